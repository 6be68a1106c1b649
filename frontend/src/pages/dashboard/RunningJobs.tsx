import { Link } from 'react-router-dom'
import type { Page } from '../../api/client'
import { allJobsPath, UNFINISHED, type ListedJob } from '../../api/jobs'
import { ago } from '../../components/format'
import { Empty, Loaded } from '../../components/States'
import { StatusBadge } from '../../components/StatusBadge'
import { useApi, useInterval } from '../../hooks/useApi'
import { paths } from '../../routes'
import { JobDuration, useNow } from '../JobDuration'

const SHOWN = 20
const ACTIVE_JOBS = allJobsPath({ status: UNFINISHED.join(','), page_size: SHOWN })
// Often while something runs (its status moves), now and then otherwise (a job may start).
const REFRESH_BUSY_MS = 5000
const REFRESH_IDLE_MS = 20000

/** What runs and waits now, across every project the user may view. */
export function RunningJobs() {
  const jobs = useApi<Page<ListedJob>>(ACTIVE_JOBS)
  const busy = (jobs.data?.results.length ?? 0) > 0
  useInterval(jobs.reload, busy ? REFRESH_BUSY_MS : REFRESH_IDLE_MS, !jobs.loading)
  const now = useNow(busy)
  return (
    <section className="card" aria-labelledby="running-jobs">
      <div className="section-header">
        <h2 id="running-jobs">Running and queued jobs</h2>
        {jobs.data && jobs.data.count > 0 && <span className="muted">{jobs.data.count}</span>}
      </div>
      <Loaded {...jobs} what="Loading running jobs">
        {(page) =>
          page.results.length === 0 ? (
            <NothingRunning />
          ) : (
            <>
              <ActiveJobsTable jobs={page.results} now={now} />
              {page.count > page.results.length && (
                <p className="muted">The {page.results.length} newest of {page.count} unfinished jobs.</p>
              )}
            </>
          )
        }
      </Loaded>
    </section>
  )
}

function ActiveJobsTable({ jobs, now }: { jobs: ListedJob[]; now: number }) {
  return (
    <div className="table-wrap">
      <table className="table" data-testid="running-jobs">
        <thead>
          <tr>
            <th>Job</th>
            <th>Status</th>
            <th className="num">Duration</th>
            <th className="hide-narrow">Machine</th>
            <th className="hide-narrow">Submitted</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <ActiveJobRow key={job.id} job={job} now={now} />
          ))}
        </tbody>
      </table>
    </div>
  )
}

function ActiveJobRow({ job, now }: { job: ListedJob; now: number }) {
  const [owner, project] = job.project.split('/')
  return (
    <tr>
      <td>
        <Link to={paths.job(owner, project, job.number)}>
          {job.project} #{job.number}
        </Link>
        {job.message && <div className="muted">{job.message}</div>}
      </td>
      <td>
        <StatusBadge status={job.status} />
      </td>
      <td className="num">
        <JobDuration job={job} now={now} />
      </td>
      <td className="hide-narrow">{job.machine}</td>
      <td className="hide-narrow" title={job.created_at}>
        {ago(job.created_at, now)}
        {job.created_by && <span className="muted"> by {job.created_by}</span>}
      </td>
    </tr>
  )
}

function NothingRunning() {
  return (
    <Empty>
      <div className="getting-started">
        <strong>Nothing is running or waiting.</strong>
        <span>In a directory of code linked to a project, start a job:</span>
        <pre>
          <code>{'ferry run "python train.py"'}</code>
        </pre>
      </div>
    </Empty>
  )
}
