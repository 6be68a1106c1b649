import type { Job } from '../../api/jobs'

export function MetricsPanel({ job }: { job: Job }) {
  return <div className="card">MetricsPanel of {job.name}</div>
}
