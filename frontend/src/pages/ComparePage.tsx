import { useState, type FormEvent } from 'react'
import { Link, useNavigate, useParams, useSearchParams } from 'react-router-dom'
import { jobPath } from '../api/jobs'
import { comparePath, isSystemKey, MAX_COMPARED_JOBS, type ComparedJob, type Comparison } from '../api/metrics'
import { MetricChart, type ChartSource } from '../components/charts/MetricChart'
import { useZooms } from '../components/charts/useZooms'
import { metric } from '../components/format'
import { PageHeader } from '../components/PageHeader'
import { Empty, ErrorMessage, Loaded } from '../components/States'
import { StatusBadge } from '../components/StatusBadge'
import { useApi } from '../hooks/useApi'
import { paths } from '../routes'
import './ComparePage.css'

type Parsed = { numbers: number[] } | { problem: string }

/** `?jobs=1,2,5` as job numbers, or what is wrong with it in words a user can act on. */
export function parseJobs(text: string | null): Parsed {
  const items = (text ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
  if (items.length === 0) return { problem: 'Choose the jobs to compare: tick them on the project page, or add them below.' }
  const wrong = items.find((item) => !/^\d{1,9}$/.test(item))
  if (wrong !== undefined) return { problem: `“${wrong}” is not a job number: give numbers separated by commas, e.g. ?jobs=1,2,5.` }
  const numbers = [...new Set(items.map(Number))]
  if (numbers.length > MAX_COMPARED_JOBS)
    return { problem: `At most ${MAX_COMPARED_JOBS} jobs can be compared at once; this address names ${numbers.length}. Remove some.` }
  return { numbers }
}

/** Several jobs of a project side by side: params, final metrics, and their shared metrics charted. */
export function ComparePage() {
  const { owner = '', project = '' } = useParams()
  const [search] = useSearchParams()
  const parsed = parseJobs(search.get('jobs'))
  const numbers = 'numbers' in parsed ? parsed.numbers : []
  const comparison = useApi<Comparison>('numbers' in parsed ? comparePath(owner, project, parsed.numbers) : null)

  return (
    <div className="page compare-page">
      <PageHeader
        breadcrumbs={
          <Link to={paths.project(owner, project)}>
            {owner}/{project}
          </Link>
        }
        title="Compare jobs"
      />
      <JobPicker owner={owner} project={project} numbers={numbers} />
      {'problem' in parsed ? (
        <ErrorMessage error={parsed.problem} />
      ) : (
        <Loaded {...comparison} what="Loading the jobs">
          {(data) => <Compared owner={owner} project={project} jobs={data.jobs} />}
        </Loaded>
      )}
    </div>
  )
}

/** The jobs compared, each removable, and a box to add one: each change is a new address. */
function JobPicker({ owner, project, numbers }: { owner: string; project: string; numbers: number[] }) {
  const navigate = useNavigate()
  const [search] = useSearchParams()
  const [adding, setAdding] = useState('')
  const [problem, setProblem] = useState('')
  const go = (next: number[]) => {
    const query = new URLSearchParams(search)
    query.set('jobs', next.join(','))
    navigate(`${paths.project(owner, project)}/compare?${query.toString().replace(/%2C/g, ',')}`)
  }
  const add = (event: FormEvent) => {
    event.preventDefault()
    const number = adding.trim()
    if (!/^\d{1,9}$/.test(number)) return setProblem('Give a job number, e.g. 7.')
    if (numbers.length >= MAX_COMPARED_JOBS) return setProblem(`At most ${MAX_COMPARED_JOBS} jobs can be compared at once.`)
    setProblem('')
    setAdding('')
    if (!numbers.includes(Number(number))) go([...numbers, Number(number)])
  }
  return (
    <form className="toolbar compare-picker" onSubmit={add}>
      {numbers.map((number) => (
        <span key={number} className="badge compare-chip">
          <Link to={paths.job(owner, project, number)}>Job {number}</Link>
          <button
            type="button"
            className="link-button"
            aria-label={`Remove job ${number}`}
            onClick={() => go(numbers.filter((n) => n !== number))}
          >
            ×
          </button>
        </span>
      ))}
      <label>
        Add job
        <input value={adding} onChange={(event) => setAdding(event.target.value)} inputMode="numeric" size={6} placeholder="7" />
      </label>
      <button type="submit" className="button small">
        Add
      </button>
      {problem && <span className="field-error">{problem}</span>}
    </form>
  )
}

function Compared({ owner, project, jobs }: { owner: string; project: string; jobs: ComparedJob[] }) {
  const metricKeys = keysOf(jobs.map((job) => Object.keys(job.latest).filter((key) => !isSystemKey(key))))
  const shared = metricKeys.filter((key) => jobs.every((job) => job.latest[key]))
  return (
    <>
      <h2>Params</h2>
      <ParamsTable owner={owner} project={project} jobs={jobs} />
      <h2>Final metrics</h2>
      <MetricsTable owner={owner} project={project} jobs={jobs} keys={metricKeys} />
      <h2>Charts</h2>
      {shared.length === 0 ? (
        <Empty>
          {metricKeys.length === 0 ? 'These jobs have recorded no metrics yet.' : 'These jobs share no metric key to chart together.'}
        </Empty>
      ) : (
        <SharedCharts owner={owner} project={project} jobs={jobs} keys={shared} />
      )}
      {shared.length > 0 && shared.length < metricKeys.length && (
        <p className="muted">
          Not charted, as only some of the jobs have them: {metricKeys.filter((key) => !shared.includes(key)).join(', ')}.
        </p>
      )}
    </>
  )
}

/** Every key of any job, sorted. */
function keysOf(lists: string[][]): string[] {
  return [...new Set(lists.flat())].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
}

function JobHeads({ owner, project, jobs }: { owner: string; project: string; jobs: ComparedJob[] }) {
  return (
    <>
      {jobs.map((job) => (
        <th key={job.number} scope="col">
          <Link to={paths.job(owner, project, job.number)}>Job {job.number}</Link> <StatusBadge status={job.status} />
        </th>
      ))}
    </>
  )
}

function ParamsTable({ owner, project, jobs }: { owner: string; project: string; jobs: ComparedJob[] }) {
  const [search, setSearch] = useSearchParams()
  const onlyDiffering = search.get('diff') === '1'
  const names = keysOf(jobs.map((job) => Object.keys(job.params)))
  if (names.length === 0) return <Empty>These jobs have no params.</Empty>
  const differs = (name: string) => new Set(jobs.map((job) => job.params[name] ?? '\u0000missing')).size > 1
  const rows = onlyDiffering ? names.filter(differs) : names
  const toggle = (on: boolean) =>
    setSearch(
      (previous) => {
        const next = new URLSearchParams(previous)
        if (on) next.set('diff', '1')
        else next.delete('diff')
        return next
      },
      { replace: true },
    )
  return (
    <>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={onlyDiffering} onChange={(event) => toggle(event.target.checked)} /> Only params that differ
        </label>
      </div>
      <div className="table-wrap">
        <table className="table compare-table">
          <thead>
            <tr>
              <th scope="col">Param</th>
              <JobHeads owner={owner} project={project} jobs={jobs} />
            </tr>
          </thead>
          <tbody>
            {rows.map((name) => (
              <tr key={name} className={differs(name) ? 'differs' : undefined}>
                <th scope="row">{name}</th>
                {jobs.map((job) => (
                  <td key={job.number}>{job.params[name] ?? <span className="muted">—</span>}</td>
                ))}
              </tr>
            ))}
            {rows.length === 0 && (
              <tr>
                <td colSpan={jobs.length + 1} className="muted">
                  Every param has the same value in these jobs.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </>
  )
}

function MetricsTable({ owner, project, jobs, keys }: { owner: string; project: string; jobs: ComparedJob[]; keys: string[] }) {
  if (keys.length === 0) return <Empty>These jobs have recorded no metrics yet.</Empty>
  return (
    <div className="table-wrap">
      <table className="table compare-table">
        <thead>
          <tr>
            <th scope="col">Metric (last value)</th>
            <JobHeads owner={owner} project={project} jobs={jobs} />
          </tr>
        </thead>
        <tbody>
          {keys.map((key) => (
            <tr key={key}>
              <th scope="row">{key}</th>
              {jobs.map((job) => {
                const latest = job.latest[key]
                return (
                  <td key={job.number} className="num" title={latest ? `at step ${latest.step}` : undefined}>
                    {latest ? metric(latest.value) : <span className="muted">—</span>}
                  </td>
                )
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

function SharedCharts({ owner, project, jobs, keys }: { owner: string; project: string; jobs: ComparedJob[]; keys: string[] }) {
  const { zoomOf, setZoom } = useZooms()
  const sources: ChartSource[] = jobs.map((job) => ({
    jobApi: jobPath(owner, project, job.number),
    label: `Job ${job.number}`,
    href: paths.job(owner, project, job.number),
  }))
  return (
    <div className="chart-grid">
      {keys.map((key) => (
        <MetricChart key={key} metricKey={key} sources={sources} zoom={zoomOf(key)} onZoom={(range) => setZoom(key, range)} />
      ))}
    </div>
  )
}
