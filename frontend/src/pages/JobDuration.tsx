import { useCallback, useState } from 'react'
import { isFinished, type Job } from '../api/jobs'
import { duration, elapsed } from '../components/format'
import { useInterval } from '../hooks/useApi'

/** The current time, moving on every second while `active` (a running job's clock). */
export function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now())
  const tick = useCallback(() => setNow(Date.now()), [])
  useInterval(tick, 1000, active)
  return now
}

/** How long the job has run: to its end, or to `now` while it runs; — before it starts. */
export function JobDuration({ job, now }: { job: Pick<Job, 'started_at' | 'finished_at' | 'status'>; now: number }) {
  // A job that ended without a recorded end (lost) has no duration to show, not one that grows.
  if (isFinished(job.status) && !job.finished_at) return <>—</>
  return <>{duration(elapsed(job.started_at, job.finished_at, now))}</>
}
