import type { ReactNode } from 'react'
import { Link } from 'react-router-dom'
import { metricNumber, type ListedJob, type MetricValue } from '../../api/jobs'
import { ago, metric } from '../../components/format'
import { StatusBadge } from '../../components/StatusBadge'
import { paths } from '../../routes'
import { JobDuration } from '../JobDuration'
import { nextOrdering, sortDirection } from './jobsQuery'

interface Props {
  owner: string
  project: string
  jobs: ListedJob[]
  metrics: string[]
  ordering: string
  onOrder(ordering: string): void
  selected: ReadonlySet<number>
  onSelect(number: number, selected: boolean): void
  now: number
}

/** The jobs of a project, one row each; the sortable columns' headers are buttons. */
export function JobsTable(props: Props) {
  const { jobs, metrics, selected, onSelect } = props
  const allSelected = jobs.length > 0 && jobs.every((job) => selected.has(job.number))
  const selectAll = (on: boolean) => jobs.forEach((job) => onSelect(job.number, on))
  const sortable = (field: string, label: string, className = '') => (
    <SortHeader field={field} label={label} className={className} ordering={props.ordering} onOrder={props.onOrder} />
  )
  return (
    <div className="table-wrap">
      <table className="table jobs-table" data-testid="jobs-table">
        <thead>
          <tr>
            <th className="select hide-narrow">
              <input
                type="checkbox"
                aria-label="Select every job on this page"
                checked={allSelected}
                onChange={(event) => selectAll(event.target.checked)}
              />
            </th>
            {sortable('number', 'Job')}
            {sortable('status', 'Status')}
            <th>Message / command</th>
            {sortable('duration', 'Duration', 'num')}
            {metrics.map((key) => (
              <SortHeader
                key={key}
                field={`metric:${key}`}
                label={key}
                className="num hide-narrow metric"
                ordering={props.ordering}
                onOrder={props.onOrder}
              />
            ))}
            <th className="hide-narrow">Machine</th>
            {sortable('created', 'Created', 'hide-narrow')}
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <JobRow key={job.id} {...props} job={job} checked={selected.has(job.number)} onCheck={(on) => onSelect(job.number, on)} />
          ))}
        </tbody>
      </table>
    </div>
  )
}

function SortHeader({
  field,
  label,
  className,
  ordering,
  onOrder,
}: {
  field: string
  label: string
  className: string
  ordering: string
  onOrder(ordering: string): void
}) {
  const direction = sortDirection(ordering, field)
  const arrow = direction === 'ascending' ? ' ▲' : direction === 'descending' ? ' ▼' : ''
  return (
    <th className={className || undefined} aria-sort={direction}>
      <button type="button" onClick={() => onOrder(nextOrdering(ordering, field))} title={`Order by ${label}`}>
        {label}
        <span aria-hidden="true">{arrow}</span>
      </button>
    </th>
  )
}

function JobRow({
  owner,
  project,
  job,
  metrics,
  now,
  checked,
  onCheck,
}: Props & { job: ListedJob; checked: boolean; onCheck(on: boolean): void }) {
  const href = paths.job(owner, project, job.number)
  return (
    <tr className={checked ? 'selected' : undefined}>
      <td className="select hide-narrow">
        <input type="checkbox" aria-label={`Select job #${job.number}`} checked={checked} onChange={(event) => onCheck(event.target.checked)} />
      </td>
      <td className="number">
        <Link to={href}>#{job.number}</Link>
      </td>
      <td>
        <StatusBadge status={job.status} />
      </td>
      <td className="message">
        <Describe job={job} />
      </td>
      <td className="num">
        <JobDuration job={job} now={now} />
      </td>
      {metrics.map((key) => (
        <td key={key} className="num hide-narrow">
          {metricText(job.metrics?.[key])}
        </td>
      ))}
      {/* Two facts a cell, so that the table fits 1280 px with a few metric columns. */}
      <td className="hide-narrow">
        {job.machine}
        <div className="muted">{job.environment}</div>
      </td>
      <td className="hide-narrow" title={job.created_at}>
        {ago(job.created_at, now)}
        <div className="muted">{job.created_by ? `by ${job.created_by}` : ''}</div>
      </td>
    </tr>
  )
}

/** The message if the job has one (the command below it, quieter), else the command. */
function Describe({ job }: { job: ListedJob }): ReactNode {
  if (!job.message) return <code className="job-command">{job.command}</code>
  return (
    <>
      <span>{job.message}</span>
      <code className="job-command muted">{job.command}</code>
    </>
  )
}

export function metricText(value: MetricValue | undefined): string {
  const number = metricNumber(value)
  if (number !== null && Number.isNaN(number)) return 'NaN'
  return metric(number)
}
