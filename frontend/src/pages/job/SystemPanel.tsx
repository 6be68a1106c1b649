import type { Job } from '../../api/jobs'
import { isSystemKey, jobApiPath, type MetricSummary } from '../../api/metrics'
import { JobCharts, useTracking } from '../../components/charts/JobCharts'
import { Empty, Loaded } from '../../components/States'

// The agent samples every few seconds and records each sample at the seconds since the job
// started as its step (tracking/collect.py): the x axis of these charts is time.
const X_LABEL = 'seconds'

const GPU_KEY = /^system\/gpu(\d+)\/(.+)$/

const GPU_CAPTIONS: Record<string, string> = {
  utilization_percent: 'utilization, %',
  memory_used_mb: 'memory used, MB',
  memory_percent: 'memory used, %',
}

/** A caption for a system key, or undefined for one this page does not know. */
export function systemCaption(key: string): string | undefined {
  if (key === 'system/cpu_percent') return 'CPU, % (100 = one core busy)'
  if (key === 'system/memory_mb') return 'Memory (resident), MB'
  const gpu = GPU_KEY.exec(key)
  const what = gpu ? GPU_CAPTIONS[gpu[2]] : undefined
  return gpu && what ? `GPU ${gpu[1]} ${what}` : undefined
}

/** CPU and memory first, then each GPU by index, then anything else under `system/`. */
export function systemOrder(a: MetricSummary, b: MetricSummary): number {
  return rank(a.key) - rank(b.key) || a.key.localeCompare(b.key, undefined, { numeric: true })
}

function rank(key: string): number {
  if (key === 'system/cpu_percent') return 0
  if (key === 'system/memory_mb') return 1
  return GPU_KEY.test(key) ? 2 : 3
}

/** The job's CPU, memory and GPU use, as its agent sampled them. */
export function SystemPanel({ job }: { job: Job }) {
  const jobApi = jobApiPath(job.project, job.number)
  const tracking = useTracking(job, jobApi)
  return (
    <Loaded {...tracking} what="Loading system metrics">
      {(data) => {
        const system = data.metrics.filter((summary) => isSystemKey(summary.key)).sort(systemOrder)
        if (system.length === 0) return <Empty>{noSamples(job)}</Empty>
        const captions = Object.fromEntries(system.map((summary) => [summary.key, systemCaption(summary.key) ?? '']))
        return <JobCharts jobApi={jobApi} summaries={system} xLabel={X_LABEL} captions={captions} />
      }}
    </Loaded>
  )
}

function noSamples(job: Job): string {
  if (job.mode === 'external') return 'This run is tracked from elsewhere: Ferry samples no system metrics for it.'
  if (job.status === 'queued' || job.status === 'scheduled' || job.status === 'starting')
    return 'No system samples yet: they start once the job runs.'
  return 'No system samples for this job: its host recorded none (on the local executor they need psutil).'
}
