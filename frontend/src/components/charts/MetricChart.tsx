import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode, type RefObject } from 'react'
import { Link } from 'react-router-dom'
import { ErrorMessage } from '../States'
import { metric } from '../format'
import { selectionRange, toChartData, type ChartData, type StepRange } from './chartData'
import { colorOf, Plot, PLOT_HEIGHT } from './Plot'
import { useSeries, type ChartSource } from './useSeries'
import './charts.css'

export type { ChartSource } from './useSeries'

interface MetricChartProps {
  /** The metric's key: the chart's heading. */
  metricKey: string
  sources: ChartSource[]
  /** A friendlier name shown under the key (system metrics). */
  caption?: string
  xLabel?: string
  zoom: StepRange | null
  onZoom(range: StepRange | null): void
  /** Changes when the series has grown: the chart then fetches it again. */
  version?: string
  /** Last, min and max, or whatever the page adds under the chart. */
  footer?: ReactNode
}

/**
 * One metric of one or several jobs. It asks the series API for about one bucket per pixel of
 * its width, never for raw points, and for a zoomed range only that range, finer: zoomed far
 * enough in, the buckets are the points themselves.
 */
export function MetricChart({ metricKey, sources, caption, xLabel = 'step', zoom, onZoom, version, footer }: MetricChartProps) {
  const box = useRef<HTMLDivElement>(null)
  const width = useWidth(box)
  const visible = useVisible(box)
  const state = useSeries(sources, metricKey, { pixels: width, zoom, version, active: visible })
  const chart = useMemo(() => (state.series ? toChartData(state.series) : undefined), [state.series])
  const [hover, setHover] = useState<number | null>(null)
  const select = useCallback(
    (a: number, b: number) => {
      const range = selectionRange(a, b)
      if (range) onZoom(range)
    },
    [onZoom],
  )
  const labels = sources.map((source) => source.label)
  const headingId = `chart-${metricKey}-${sources.map((s) => s.jobApi).join('-')}`.replace(/[^\w-]/g, '_')

  return (
    <section
      className="card metric-chart"
      data-testid="metric-chart"
      data-metric={metricKey}
      data-state={phase(state.error, state.loading, chart)}
      aria-labelledby={headingId}
    >
      <header className="metric-chart-head">
        <div>
          <h3 id={headingId}>{metricKey}</h3>
          {caption && <div className="muted">{caption}</div>}
        </div>
        {zoom && (
          <div className="metric-chart-zoom">
            <span>
              {xLabel} {zoom.from.toLocaleString()}–{zoom.to.toLocaleString()}
            </span>
            <button type="button" className="button small" onClick={() => onZoom(null)}>
              Reset zoom
            </button>
          </div>
        )}
      </header>
      {sources.length > 1 && <Legend sources={sources} />}
      <div className="metric-chart-body" ref={box} style={{ minHeight: PLOT_HEIGHT }}>
        {chart && !chart.empty && (
          <Plot chart={chart} labels={labels} width={width} xLabel={xLabel} zoom={zoom} onSelect={select} onHover={setHover} />
        )}
        <Overlay chart={chart} loading={state.loading} error={state.error} reload={state.reload} zoomed={zoom !== null} />
      </div>
      <Readout chart={chart} index={hover} labels={labels} xLabel={xLabel} />
      {footer}
    </section>
  )
}

/** For end-to-end tests and benchmarks: "ready" once the latest answer is drawn. */
function phase(error: Error | undefined, loading: boolean, chart: ChartData | undefined): string {
  if (error) return 'error'
  if (loading || !chart) return 'loading'
  return chart.empty ? 'empty' : 'ready'
}

function Overlay({
  chart,
  loading,
  error,
  reload,
  zoomed,
}: {
  chart: ChartData | undefined
  loading: boolean
  error: Error | undefined
  reload(): void
  zoomed: boolean
}) {
  if (error) {
    return (
      <div className="metric-chart-overlay">
        <ErrorMessage error={error} retry={reload} />
      </div>
    )
  }
  if (loading) {
    return (
      <div className={`metric-chart-overlay${chart ? ' metric-chart-overlay-light' : ''}`} role="status" aria-live="polite">
        <span className="spinner" aria-hidden="true" /> Loading…
      </div>
    )
  }
  if (chart?.empty) {
    return <div className="metric-chart-overlay">{zoomed ? 'No points in this range.' : 'No points yet.'}</div>
  }
  return null
}

function Legend({ sources }: { sources: ChartSource[] }) {
  return (
    <ul className="metric-chart-legend">
      {sources.map((source, i) => (
        <li key={source.jobApi}>
          <span className="swatch" style={{ background: colorOf(i) }} aria-hidden="true" />
          {source.href ? <Link to={source.href}>{source.label}</Link> : source.label}
        </li>
      ))}
    </ul>
  )
}

/** What is under the cursor: the step and each line's value there (its bucket's range too). */
function Readout({ chart, index, labels, xLabel }: { chart: ChartData | undefined; index: number | null; labels: string[]; xLabel: string }) {
  const x = chart && index !== null ? chart.data[0][index] : null
  if (!chart || index === null || x === null || x === undefined) {
    return <div className="metric-chart-readout muted">{chart && !chart.empty ? 'Drag across the chart to zoom in.' : '\u00a0'}</div>
  }
  const approx = chart.width > 1 ? '≈ ' : ''
  return (
    <div className="metric-chart-readout" aria-live="off">
      <span>
        {xLabel} {approx}
        {x.toLocaleString()}
      </span>
      {labels.map((label, i) => {
        const [mean, low, high] = [1, 2, 3].map((offset) => chart.data[3 * i + offset][index])
        if (mean === null) return null
        const range = low !== null && high !== null && low !== high ? ` (${metric(low)} – ${metric(high)})` : ''
        return (
          <span key={label}>
            {labels.length > 1 && <span className="swatch" style={{ background: colorOf(i) }} aria-hidden="true" />}
            {labels.length > 1 ? `${label}: ` : ''}
            {metric(mean)}
            {range}
          </span>
        )
      })}
    </div>
  )
}

// jsdom (the component tests) has neither ResizeObserver nor IntersectionObserver: the chart
// then keeps a default width and counts as visible.
const DEFAULT_WIDTH = 600

function useWidth(box: RefObject<HTMLDivElement | null>): number {
  const [width, setWidth] = useState(DEFAULT_WIDTH)
  useEffect(() => {
    const element = box.current
    if (!element || typeof ResizeObserver === 'undefined') return
    const observer = new ResizeObserver(([entry]) => {
      const measured = Math.floor(entry.contentRect.width)
      if (measured > 0) setWidth(measured)
    })
    observer.observe(element)
    return () => observer.disconnect()
  }, [box])
  return width
}

/** Whether the chart is on screen (or near it): a long grid refreshes only what is shown. */
function useVisible(box: RefObject<HTMLDivElement | null>): boolean {
  const [visible, setVisible] = useState(typeof IntersectionObserver === 'undefined')
  useEffect(() => {
    const element = box.current
    if (!element || typeof IntersectionObserver === 'undefined') return
    const observer = new IntersectionObserver(([entry]) => setVisible(entry.isIntersecting), { rootMargin: '200px' })
    observer.observe(element)
    return () => observer.disconnect()
  }, [box])
  return visible
}
