import { get, post, query, type Page } from './client'

export type JobStatus = 'queued' | 'scheduled' | 'starting' | 'running' | 'stopping' | 'succeeded' | 'failed' | 'stopped' | 'lost'

export const FINISHED: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'stopped', 'lost'])
export const isFinished = (status: string) => FINISHED.has(status as JobStatus)

export interface JobInput {
  name: string
  kind: string
  /** "owner/dataset/3" for a dataset version, "owner/project/7/output" for a job's output. */
  source: string
  tree: string
}

export interface Job {
  id: number
  number: number
  /** "owner/project/number" */
  name: string
  /** "owner/project" */
  project: string
  mode: string
  command: string
  message: string
  environment: string
  machine: string
  code: string | null
  inputs: JobInput[]
  params: Record<string, unknown>
  max_runtime_s: number | null
  priority: number
  replicas: number
  max_retries: number
  attempt: number
  status: JobStatus
  status_reason: string
  queue_position: number | null
  queue_length: number | null
  exit_code: number | null
  output: string | null
  output_size: number | null
  output_at: string | null
  host: { name: string; executor: string; gpus: number[] } | null
  created_by: string | null
  created_at: string
  started_at: string | null
  finished_at: string | null
}

export interface JobEvent {
  from_status: string
  to_status: string
  reason: string
  created_at: string
}

export const jobsPath = (owner: string, project: string) =>
  `projects/${encodeURIComponent(owner)}/${encodeURIComponent(project)}/jobs`
export const jobPath = (owner: string, project: string, number: number | string) =>
  `${jobsPath(owner, project)}/${number}`

export const listJobs = (owner: string, project: string, params: Record<string, string | number | undefined> = {}) =>
  get<Page<Job>>(jobsPath(owner, project) + query(params))
export const getJob = (owner: string, project: string, number: number | string) => get<Job>(jobPath(owner, project, number))
export const stopJob = (owner: string, project: string, number: number | string) =>
  post<Job>(`${jobPath(owner, project, number)}/stop`)
export const restartJob = (owner: string, project: string, number: number | string, changes: Record<string, unknown> = {}) =>
  post<Job>(`${jobPath(owner, project, number)}/restart`, changes)

export interface MachineType {
  name: string
  description: string
  cpus: number
  memory_mb: number
  gpus: number
  gpu_model: string
  is_default: boolean
}

export interface Environment {
  name: string
  description: string
  image: string
  gpu_image: string
  is_default: boolean
}

export const jobEventsPath = (owner: string, project: string, number: number | string) =>
  `${jobPath(owner, project, number)}/events`
export const machineTypesPath = 'machine-types'
export const environmentsPath = 'environments'

// --- lists of jobs: filters, order and metric columns (GET …/jobs and GET /jobs) ---

/** A metric's latest value: a number, or "NaN" / "Infinity" / "-Infinity" as JSON carries them. */
export type MetricValue = number | string | null

/** A job in a list, with the latest value of each metric key the list asked for. */
export interface ListedJob extends Job {
  metrics: Record<string, MetricValue>
}

export interface JobListQuery {
  /** Comma-separated statuses, e.g. "running,queued". */
  status?: string
  /** Text in the message or command; a job number matches that job. */
  search?: string
  /** A username. */
  created_by?: string
  /** number, created, duration, status or metric:KEY; a leading - for descending. */
  ordering?: string
  /** Comma-separated metric keys whose latest values come in each job's `metrics`. */
  metrics?: string
  page?: number
  page_size?: number
}

export const UNFINISHED: readonly JobStatus[] = ['queued', 'scheduled', 'starting', 'running', 'stopping']

export const projectJobsPath = (owner: string, project: string, params: JobListQuery = {}) =>
  jobsPath(owner, project) + query({ ...params })

/** The jobs of every project the caller may view. */
export const allJobsPath = (params: JobListQuery = {}) => `jobs${query({ ...params })}`

/** A metric value as a number for formatting: the JSON strings back to their floats. */
export function metricNumber(value: MetricValue | undefined): number | null {
  if (value === null || value === undefined) return null
  if (typeof value === 'number') return value
  if (value === 'Infinity') return Infinity
  if (value === '-Infinity') return -Infinity
  return NaN
}
