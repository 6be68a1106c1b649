import { useState } from 'react'
import { Link, useNavigate, useParams, useSearchParams } from 'react-router-dom'
import type { ApiError, Page } from '../api/client'
import { isFinished, projectJobsPath, type ListedJob } from '../api/jobs'
import { metricKeysPath, projectPath, type MetricKey, type Project } from '../api/projects'
import { PageHeader } from '../components/PageHeader'
import { Empty, ErrorMessage, Loaded } from '../components/States'
import { useApi, useInterval } from '../hooks/useApi'
import { paths } from '../routes'
import { useNow } from './JobDuration'
import { JobFilters, MetricColumns } from './project/JobsToolbar'
import { JobsTable } from './project/JobsTable'
import { apiQuery, DEFAULT_METRIC_COLUMNS, readQuery, writeQuery, type QueryChange, type TableQuery } from './project/jobsQuery'
import './project/ProjectPage.css'

const PAGE_SIZE = 50
// While a listed job is unfinished its status, duration and metrics move: read them again.
const REFRESH_MS = 5000

export function ProjectPage() {
  const { owner = '', project = '' } = useParams()
  const details = useApi<Project>(projectPath(owner, project))
  const missing = details.error !== undefined && details.data === undefined
  return (
    <div className="page project-page">
      <div className="breadcrumbs">
        <Link to={paths.dashboard()}>Dashboard</Link> / {owner}
      </div>
      <Loaded {...details} what="Loading the project">
        {(found) => <ProjectHeader project={found} />}
      </Loaded>
      {!missing && <ProjectJobs owner={owner} project={project} />}
    </div>
  )
}

function ProjectHeader({ project }: { project: Project }) {
  return (
    <header className="project-header">
      <PageHeader title={project.name}>
        <span className="badge" title={project.visibility === 'public' ? 'Anyone may view it' : 'Only its members may view it'}>
          {project.visibility}
        </span>
        {project.role && <span className="muted">you are {project.role === 'owner' ? 'its owner' : `a ${project.role}`}</span>}
      </PageHeader>
      {project.description ? <p className="description">{project.description}</p> : <p className="muted">No description.</p>}
    </header>
  )
}

/** The most reported of the project's own metrics: the columns a table shows unless told. */
function defaultColumns(keys: MetricKey[]): string[] {
  return keys.filter((key) => !key.system).slice(0, DEFAULT_METRIC_COLUMNS).map((key) => key.key)
}

function ProjectJobs({ owner, project }: { owner: string; project: string }) {
  const navigate = useNavigate()
  const [params, setParams] = useSearchParams()
  const query = readQuery(params)
  const keys = useApi<Page<MetricKey>>(metricKeysPath(owner, project))
  // Until the keys are known, a table whose address names no columns waits for them, rather
  // than being read twice.
  const metrics = query.metrics ?? (keys.data ? defaultColumns(keys.data.results) : keys.error ? [] : null)
  const path = metrics === null ? null : projectJobsPath(owner, project, { ...apiQuery(query, metrics), page_size: PAGE_SIZE })
  const jobs = useApi<Page<ListedJob>>(path)
  const rows = jobs.data?.results ?? []
  const unfinished = rows.some((job) => !isFinished(job.status))
  useInterval(jobs.reload, REFRESH_MS, unfinished && !jobs.loading)
  const now = useNow(unfinished)
  const [selected, setSelected] = useState<ReadonlySet<number>>(new Set())

  const change = (next: QueryChange) => setParams(writeQuery(params, next))
  const select = (number: number, on: boolean) =>
    setSelected((previous) => {
      const next = new Set(previous)
      if (on) next.add(number)
      else next.delete(number)
      return next
    })
  const compare = () => navigate(paths.compare(owner, project, [...selected].sort((a, b) => a - b)))

  return (
    <section className="project-jobs" aria-labelledby="jobs-heading">
      <div className="section-header">
        <h2 id="jobs-heading">Jobs</h2>
        {jobs.data && <span className="muted">{jobs.data.count}</span>}
        <div className="actions">
          <CompareBar count={selected.size} onCompare={compare} onClear={() => setSelected(new Set())} />
          <MetricColumns
            keys={keys.data?.results ?? []}
            problem={keys.error?.message}
            shown={metrics ?? []}
            onChange={(next) => change({ metrics: next })}
          />
        </div>
      </div>
      <JobFilters key={`${query.search}\n${query.createdBy}`} query={query} onChange={change} />
      {jobs.error && jobs.data && <ErrorMessage error={jobs.error} retry={jobs.reload} />}
      {jobs.error && !jobs.data ? (
        <JobsError error={jobs.error} retry={jobs.reload} reset={() => setParams(new URLSearchParams())} />
      ) : (
        <Loaded data={jobs.data} loading={jobs.loading || path === null} what="Loading jobs">
          {(page) =>
            page.results.length === 0 ? (
              <NoJobs owner={owner} project={project} query={query} onClear={() => change({ status: '', search: '', createdBy: '' })} />
            ) : (
              <>
                <JobsTable
                  owner={owner}
                  project={project}
                  jobs={page.results}
                  metrics={metrics ?? []}
                  ordering={query.ordering}
                  onOrder={(ordering) => change({ ordering })}
                  selected={selected}
                  onSelect={select}
                  now={now}
                />
                <Pager page={query.page} count={page.count} hasNext={page.next !== null} onPage={(number) => change({ page: number })} />
              </>
            )
          }
        </Loaded>
      )}
    </section>
  )
}

/** A refused address (a hand-edited filter or order) is fixed by starting over, not by asking
 * the same again. */
function JobsError({ error, retry, reset }: { error: ApiError; retry(): void; reset(): void }) {
  if (error.status !== 400) return <ErrorMessage error={error} retry={retry} />
  return (
    <>
      <ErrorMessage error={error} />
      <button type="button" className="button" onClick={reset}>
        Show all jobs
      </button>
    </>
  )
}

function CompareBar({ count, onCompare, onClear }: { count: number; onCompare(): void; onClear(): void }) {
  return (
    <div className="compare-bar">
      {count > 0 && (
        <>
          <span className="muted">{count} selected</span>
          <button type="button" className="link-button" onClick={onClear}>
            Clear
          </button>
        </>
      )}
      <button
        type="button"
        className="button primary"
        disabled={count < 2}
        title={count < 2 ? 'Select two or more jobs to compare them' : undefined}
        onClick={onCompare}
      >
        Compare
      </button>
    </div>
  )
}

function Pager({ page, count, hasNext, onPage }: { page: number; count: number; hasNext: boolean; onPage(page: number): void }) {
  const pages = Math.max(1, Math.ceil(count / PAGE_SIZE))
  if (pages === 1 && page === 1) return null
  return (
    <nav className="jobs-pager" aria-label="Pages of jobs">
      <button type="button" className="button small" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        Previous
      </button>
      <span>
        Page {page} of {pages}
      </span>
      <button type="button" className="button small" disabled={!hasNext} onClick={() => onPage(page + 1)}>
        Next
      </button>
    </nav>
  )
}

function NoJobs({ owner, project, query, onClear }: { owner: string; project: string; query: TableQuery; onClear(): void }) {
  if (query.status || query.search || query.createdBy) {
    return (
      <Empty>
        No jobs match these filters.{' '}
        <button type="button" className="link-button" onClick={onClear}>
          Clear filters
        </button>
      </Empty>
    )
  }
  if (query.page > 1) return <Empty>This page is past the last job.</Empty>
  return (
    <Empty>
      <div className="getting-started">
        <strong>No jobs yet.</strong>
        <span>Link a directory of code to this project and run it:</span>
        <pre>
          <code>{`ferry init ${owner}/${project}\nferry run "python train.py"`}</code>
        </pre>
      </div>
    </Empty>
  )
}
