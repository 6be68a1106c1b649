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
