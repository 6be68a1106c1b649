// A job's tracking data (tracking/views.py): the summaries of its metric series, one series
// downsampled into buckets, and several jobs compared.
import { get, query } from './client'
import { jobPath } from './jobs'

export interface LatestValue {
  value: number | null
  step: number
  /** Epoch milliseconds. */
  timestamp: number | null
}

export interface MetricSummary {
  key: string
  points: number
  first_step: number
  last_step: number
  min: number | null
  max: number | null
  latest: LatestValue
}

export interface Tracking {
  params: Record<string, string>
  tags: Record<string, string>
  metrics: MetricSummary[]
}

/** The points of a series from `first_step` to `last_step`; one point when `points` is 1. */
export interface Bucket {
  first_step: number
  last_step: number
  points: number
  /** Extremes and mean leave NaN out: null when every point was NaN. */
  min: number | null
  max: number | null
  mean: number | null
  last: number | null
}

export interface Series {
  key: string
  /** Points in the whole series, not only in the range asked for. */
  points: number
  /** Steps per bucket; 1 means every point as recorded. */
  width: number
  buckets: Bucket[]
}

/** The server's caps (tracking/selectors.py, tracking/serializers.py). */
export const MAX_BUCKETS = 10_000
export const MAX_COMPARED_JOBS = 20

export interface SeriesQuery {
  key: string
  buckets: number
  first_step?: number
  last_step?: number
}

/** Where a job's API lives, from the job's "owner/project" and number. */
export function jobApiPath(project: string, number: number): string {
  const [owner, name] = project.split('/')
  return jobPath(owner, name, number)
}

export const trackingPath = (jobApi: string) => `${jobApi}/tracking`
export const seriesPath = (jobApi: string, q: SeriesQuery) => `${jobApi}/metrics/series${query({ ...q })}`

export const getSeries = (jobApi: string, q: SeriesQuery, signal?: AbortSignal) => get<Series>(seriesPath(jobApi, q), signal)

export interface ComparedJob {
  number: number
  /** "owner/project/number" */
  name: string
  status: string
  params: Record<string, string>
  /** Each metric key the job has, with its latest value. */
  latest: Record<string, LatestValue | null>
}

export interface Comparison {
  project: string
  jobs: ComparedJob[]
}

/** Params and latest values only: the charts fetch their own series, at their own width. */
export const comparePath = (owner: string, project: string, numbers: number[]) =>
  `projects/${encodeURIComponent(owner)}/${encodeURIComponent(project)}/compare${query({ jobs: numbers.join(',') })}`

export const isSystemKey = (key: string) => key.startsWith('system/')
