import { useSearchParams } from 'react-router-dom'
import type { Job } from '../../api/jobs'
import { isSystemKey, jobApiPath, type MetricSummary } from '../../api/metrics'
import { JobCharts, useTracking } from '../../components/charts/JobCharts'
import { Empty, Loaded } from '../../components/States'

/** The job's own metrics (not `system/`), one chart each, filtered by `?metrics=`. */
export function MetricsPanel({ job }: { job: Job }) {
  const jobApi = jobApiPath(job.project, job.number)
  const tracking = useTracking(job, jobApi)
  const [filter, setFilter] = useFilter()

  return (
    <Loaded {...tracking} what="Loading metrics">
      {(data) => {
        const own = data.metrics.filter((summary) => !isSystemKey(summary.key))
        if (own.length === 0) return <Empty>This job has recorded no metrics yet. They appear here as it logs them.</Empty>
        const shown = own.filter(matches(filter))
        return (
          <div>
            <div className="toolbar">
              <label>
                Filter metrics
                <input type="search" value={filter} placeholder="loss, acc" onChange={(event) => setFilter(event.target.value)} />
              </label>
              <span className="muted">
                {shown.length} of {own.length}
              </span>
            </div>
            {shown.length === 0 ? (
              <Empty>No metric matches “{filter}”. Clear the filter or try another part of a key.</Empty>
            ) : (
              <JobCharts jobApi={jobApi} summaries={shown} />
            )}
          </div>
        )
      }}
    </Loaded>
  )
}

/** `?metrics=`, the filter, replaced as the user types (not one history entry per letter). */
function useFilter(): [string, (text: string) => void] {
  const [search, setSearch] = useSearchParams()
  const setFilter = (text: string) =>
    setSearch(
      (previous) => {
        const next = new URLSearchParams(previous)
        if (text) next.set('metrics', text)
        else next.delete('metrics')
        return next
      },
      { replace: true },
    )
  return [search.get('metrics') ?? '', setFilter]
}

/** Comma-separated parts of keys; a key matching any of them is shown. */
function matches(filter: string): (summary: MetricSummary) => boolean {
  const parts = filter
    .toLowerCase()
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
  return (summary) => parts.length === 0 || parts.some((part) => summary.key.toLowerCase().includes(part))
}
