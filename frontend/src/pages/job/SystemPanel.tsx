import type { Job } from '../../api/jobs'

export function SystemPanel({ job }: { job: Job }) {
  return <div className="card">SystemPanel of {job.name}</div>
}
