import { useState, type FormEvent } from 'react'
import type { MetricKey } from '../../api/projects'
import { MAX_METRIC_COLUMNS, STATUS_CHOICES, type QueryChange, type TableQuery } from './jobsQuery'

/** The jobs table's filters: status applies at once; the texts when the form is sent. */
export function JobFilters({ query, onChange }: { query: TableQuery; onChange(change: QueryChange): void }) {
  const [search, setSearch] = useState(query.search)
  const [createdBy, setCreatedBy] = useState(query.createdBy)
  const filtered = Boolean(query.status || query.search || query.createdBy)
  const choices = STATUS_CHOICES.some((choice) => choice.value === query.status)
    ? STATUS_CHOICES
    : [...STATUS_CHOICES, { value: query.status, label: query.status }]

  function submit(event: FormEvent) {
    event.preventDefault()
    onChange({ search, createdBy })
  }

  return (
    <form className="toolbar jobs-filters" role="search" aria-label="Filter jobs" onSubmit={submit}>
      <label>
        Status
        <select value={query.status} onChange={(event) => onChange({ status: event.target.value })}>
          {choices.map((choice) => (
            <option key={choice.value} value={choice.value}>
              {choice.label}
            </option>
          ))}
        </select>
      </label>
      <input
        type="search"
        aria-label="Search messages and commands"
        placeholder="Search messages and commands"
        value={search}
        onChange={(event) => setSearch(event.target.value)}
        maxLength={200}
      />
      <input
        aria-label="Created by"
        placeholder="Created by (username)"
        value={createdBy}
        onChange={(event) => setCreatedBy(event.target.value)}
        maxLength={150}
        className="created-by"
      />
      <button type="submit" className="button">
        Filter
      </button>
      {filtered && (
        <button type="button" className="link-button" onClick={() => onChange({ status: '', search: '', createdBy: '' })}>
          Clear filters
        </button>
      )}
    </form>
  )
}

/** Which metrics the table shows as columns: the project's own metrics first, then the
 * system metrics the agent records. */
export function MetricColumns({
  keys,
  problem,
  shown,
  onChange,
}: {
  keys: MetricKey[]
  /** Why the keys could not be read, if they could not. */
  problem?: string
  shown: string[]
  onChange(metrics: string[]): void
}) {
  const known = new Set(keys.map((key) => key.key))
  // A column the address names but no job reported yet stays choosable, so it can be removed.
  const choices = [...keys.map((key) => key.key), ...shown.filter((key) => !known.has(key))]
  const full = shown.length >= MAX_METRIC_COLUMNS
  const toggle = (key: string, on: boolean) =>
    onChange(on ? [...shown, key] : shown.filter((column) => column !== key))
  return (
    <details className="metric-columns">
      <summary className="button">Metric columns ({shown.length})</summary>
      <div className="metric-columns-menu">
        {problem && <p className="field-error">{problem}</p>}
        {choices.length === 0 ? (
          !problem && <p className="muted">No job of this project has reported a metric yet.</p>
        ) : (
          choices.map((key) => {
            const on = shown.includes(key)
            return (
              <label key={key}>
                <input type="checkbox" checked={on} disabled={!on && full} onChange={(event) => toggle(key, event.target.checked)} />
                {key}
              </label>
            )
          })
        )}
        {full && <p className="muted">At most {MAX_METRIC_COLUMNS} columns: remove one to add another.</p>}
      </div>
    </details>
  )
}
