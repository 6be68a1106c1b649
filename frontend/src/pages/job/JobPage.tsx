import { useCallback, useState } from 'react'
import { Link, useParams, useSearchParams } from 'react-router-dom'
import { isFinished, jobPath, type Job } from '../../api/jobs'
import type { SocketStatus } from '../../api/logs'
import { PageHeader } from '../../components/PageHeader'
import { ErrorMessage, Loading } from '../../components/States'
import { StatusBadge } from '../../components/StatusBadge'
import { useApi, useInterval } from '../../hooks/useApi'
import { paths } from '../../routes'
import { JobActions } from './JobActions'
import { LogsTab } from './LogsTab'
import { MetricsPanel } from './MetricsPanel'
import { OutputTab } from './OutputTab'
import { OverviewTab } from './OverviewTab'
import { SystemPanel } from './SystemPanel'
import './JobPage.css'

const TABS = [
  { id: 'overview', label: 'Overview' },
  { id: 'logs', label: 'Logs' },
  { id: 'metrics', label: 'Metrics' },
  { id: 'system', label: 'System' },
  { id: 'output', label: 'Output' },
] as const
type TabId = (typeof TABS)[number]['id']

/** While the job is unfinished it is fetched this often, besides what the websocket says. */
const POLL_MS = 5000

function tabOf(value: string | null): TabId {
  return TABS.find((tab) => tab.id === value)?.id ?? 'overview'
}

export function JobPage() {
  const { owner = '', project = '', number = '' } = useParams()
  const [params] = useSearchParams()
  const tab = tabOf(params.get('tab'))
  const { job, error, loading, reload, setJob } = useLiveJob(owner, project, number)

  if (!job) {
    if (error?.status === 404) return <JobNotFound owner={owner} project={project} number={number} />
    if (error) return <ErrorMessage error={error} retry={reload} />
    if (loading) return <Loading what="Loading the job" />
    return null
  }

  const onStatus = (message: SocketStatus) => {
    if (message.status === job.status) return
    setJob({ ...job, status: message.status as Job['status'], status_reason: message.reason, exit_code: message.exit_code })
    reload()
  }

  return (
    <div className="page job-page">
      <JobHeader owner={owner} project={project} job={job} onChange={setJob} />
      {error && <ErrorMessage error={error} retry={reload} />}
      <nav className="tabs" role="tablist" aria-label="Job views">
        {TABS.map(({ id, label }) => (
          <Link
            key={id}
            role="tab"
            id={`job-tab-${id}`}
            aria-selected={tab === id}
            aria-controls="job-tabpanel"
            className={tab === id ? 'active' : undefined}
            to={paths.job(owner, project, job.number, id === 'overview' ? undefined : id)}
          >
            {label}
          </Link>
        ))}
      </nav>
      <div role="tabpanel" id="job-tabpanel" aria-labelledby={`job-tab-${tab}`}>
        {tab === 'overview' && <OverviewTab owner={owner} project={project} job={job} />}
        {tab === 'logs' && <LogsTab key={job.id} owner={owner} project={project} job={job} onStatus={onStatus} />}
        {tab === 'metrics' && <MetricsPanel job={job} />}
        {tab === 'system' && <SystemPanel job={job} />}
        {tab === 'output' && <OutputTab owner={owner} project={project} job={job} />}
      </div>
    </div>
  )
}

interface News {
  /** The fetched job this news is newer than: the next fetch supersedes it. */
  base: Job | undefined
  job: Job
}

/** The job, fetched again every few seconds until it ends; `setJob` shows news at once. */
function useLiveJob(owner: string, project: string, number: string) {
  const loaded = useApi<Job>(jobPath(owner, project, number))
  const [news, setNews] = useState<News>()
  const { reload } = loaded
  // Right after moving to another job, useApi still holds the last one: show none until it comes.
  const data = isJob(loaded.data, owner, project, number) ? loaded.data : undefined
  const job = news && news.base === data ? news.job : data
  const setJob = useCallback((next: Job) => setNews({ base: data, job: next }), [data])
  useInterval(reload, POLL_MS, job !== undefined && !isFinished(job.status))
  return { job, error: loaded.error, loading: loaded.loading, reload, setJob }
}

function isJob(job: Job | undefined, owner: string, project: string, number: string): job is Job {
  return job !== undefined && String(job.number) === number && job.project.toLowerCase() === `${owner}/${project}`.toLowerCase()
}

function JobHeader({ owner, project, job, onChange }: { owner: string; project: string; job: Job; onChange(job: Job): void }) {
  return (
    <header className="job-header">
      <PageHeader
        breadcrumbs={
          <>
            <span>{owner}</span> / <Link to={paths.project(owner, project)}>{project}</Link> / #{job.number}
          </>
        }
        title={`${project} #${job.number}`}
      >
        <StatusBadge status={job.status} />
        <StatusReason job={job} />
        <JobActions owner={owner} project={project} job={job} onChange={onChange} />
      </PageHeader>
      {job.message && <p className="job-message">{job.message}</p>}
    </header>
  )
}

/** Why the job is where it is; for a queued job the server's reason ends with its place. */
function StatusReason({ job }: { job: Job }) {
  let reason = job.status_reason
  if (!reason && job.status === 'queued' && job.queue_position !== null) {
    reason = `position ${job.queue_position}${job.queue_length ? ` of ${job.queue_length}` : ''}`
  }
  if (!reason) return null
  return <span className="muted job-reason">{reason}</span>
}

function JobNotFound({ owner, project, number }: { owner: string; project: string; number: string }) {
  return (
    <div className="page">
      <div className="state state-error" role="alert">
        <span>
          Job #{number} was not found in {owner}/{project}: it may not exist, or you may not be allowed to see it.
        </span>
      </div>
      <p>
        <Link to={paths.project(owner, project)}>Back to {owner}/{project}</Link>
      </p>
    </div>
  )
}
