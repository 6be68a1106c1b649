// The jobs table's state as the address holds it: filters, order, metric columns and page are
// query parameters named as the API names them, so a filtered, sorted table has a link.
import { FINISHED, UNFINISHED, type JobListQuery } from '../../api/jobs'

export const DEFAULT_ORDERING = '-number'
export const MAX_METRIC_COLUMNS = 10
/** How many metric columns a table shows when its address names none. */
export const DEFAULT_METRIC_COLUMNS = 3

export interface TableQuery {
  status: string
  search: string
  createdBy: string
  ordering: string
  /** null: the address names none, so the table shows the project's most reported ones. */
  metrics: string[] | null
  page: number
}

export function readQuery(params: URLSearchParams): TableQuery {
  const page = Number(params.get('page') ?? '1')
  return {
    status: params.get('status') ?? '',
    search: params.get('search') ?? '',
    createdBy: params.get('created_by') ?? '',
    ordering: params.get('ordering') || DEFAULT_ORDERING,
    metrics: params.has('metrics') ? splitList(params.get('metrics') ?? '') : null,
    page: Number.isInteger(page) && page > 0 ? page : 1,
  }
}

export const splitList = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)

/** What the jobs list is asked for, given the metric columns shown. */
export function apiQuery(query: TableQuery, metrics: string[]): JobListQuery {
  return {
    status: query.status || undefined,
    search: query.search || undefined,
    created_by: query.createdBy || undefined,
    ordering: query.ordering === DEFAULT_ORDERING ? undefined : query.ordering,
    metrics: metrics.length ? metrics.join(',') : undefined,
    page: query.page > 1 ? query.page : undefined,
  }
}

export interface QueryChange {
  status?: string
  search?: string
  createdBy?: string
  ordering?: string
  metrics?: string[]
  page?: number
}

/** The address's parameters after `change`; any change but a page's goes back to page 1. */
export function writeQuery(params: URLSearchParams, change: QueryChange): URLSearchParams {
  const next = new URLSearchParams(params)
  const set = (name: string, value: string | undefined, fallback = '') => {
    if (value === undefined) return
    if (value === fallback) next.delete(name)
    else next.set(name, value)
  }
  set('status', change.status)
  set('search', change.search?.trim())
  set('created_by', change.createdBy?.trim())
  set('ordering', change.ordering, DEFAULT_ORDERING)
  if (change.metrics !== undefined) next.set('metrics', change.metrics.join(','))
  if (change.page !== undefined) set('page', String(change.page), '1')
  else next.delete('page')
  return next
}

/** The order after a click on a column's header: the other way round if it is the column
 * ordered by, else that column, largest (or newest) first. */
export function nextOrdering(current: string, field: string): string {
  if (current === `-${field}`) return field
  return `-${field}`
}

export function sortDirection(ordering: string, field: string): 'ascending' | 'descending' | undefined {
  if (ordering === field) return 'ascending'
  if (ordering === `-${field}`) return 'descending'
  return undefined
}

export const STATUS_CHOICES: { value: string; label: string }[] = [
  { value: '', label: 'Any status' },
  { value: UNFINISHED.join(','), label: 'Unfinished' },
  { value: [...FINISHED].join(','), label: 'Finished' },
  ...['queued', 'running', 'succeeded', 'failed', 'stopped', 'lost'].map((status) => ({
    value: status,
    label: status[0].toUpperCase() + status.slice(1),
  })),
]
