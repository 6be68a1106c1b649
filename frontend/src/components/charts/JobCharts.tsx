import { useEffect, useRef } from 'react'
import { isFinished, type Job } from '../../api/jobs'
import { trackingPath, type MetricSummary, type Tracking } from '../../api/metrics'
import { useApi, useInterval } from '../../hooks/useApi'
import { metric } from '../format'
import { MetricChart } from './MetricChart'
import { useZooms } from './useZooms'
import './charts.css'

/** How often a running job's summaries are read again; a chart refetches only if its series grew. */
export const REFRESH_MS = 5000

/** The job's tracking summaries, read again every few seconds while the job runs. */
export function useTracking(job: Job, jobApi: string) {
  const tracking = useApi<Tracking>(trackingPath(jobApi))
  const running = !isFinished(job.status)
  const wasRunning = useRef(running)
  const { reload } = tracking
  useInterval(reload, REFRESH_MS, running)
  // Once more as the job ends: its last points came after the last tick.
  useEffect(() => {
    if (wasRunning.current && !running) reload()
    wasRunning.current = running
  }, [running, reload])
  return tracking
}

interface JobChartsProps {
  jobApi: string
  summaries: MetricSummary[]
  xLabel?: string
  /** A friendlier name under a key's heading. */
  captions?: Record<string, string>
}

/** One chart per series of one job, each with its last, min and max; zooms in the address. */
export function JobCharts({ jobApi, summaries, xLabel, captions }: JobChartsProps) {
  const { zoomOf, setZoom } = useZooms()
  return (
    <div className="chart-grid">
      {summaries.map((summary) => (
        <MetricChart
          key={summary.key}
          metricKey={summary.key}
          caption={captions?.[summary.key]}
          sources={[{ jobApi, label: summary.key }]}
          xLabel={xLabel}
          zoom={zoomOf(summary.key)}
          onZoom={(range) => setZoom(summary.key, range)}
          version={`${summary.points}:${summary.last_step}`}
          footer={<Stats summary={summary} xLabel={xLabel ?? 'step'} />}
        />
      ))}
    </div>
  )
}

function Stats({ summary, xLabel }: { summary: MetricSummary; xLabel: string }) {
  return (
    <div className="metric-stats">
      <span>
        last <b>{metric(summary.latest.value)}</b> at {xLabel} {summary.latest.step.toLocaleString()}
      </span>
      <span>
        min <b>{metric(summary.min)}</b>
      </span>
      <span>
        max <b>{metric(summary.max)}</b>
      </span>
      <span className="hide-narrow">{summary.points.toLocaleString()} points</span>
    </div>
  )
}
