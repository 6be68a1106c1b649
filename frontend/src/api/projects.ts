import { get, post, query, type Page } from './client'
import type { JobStatus } from './jobs'

export type Visibility = 'public' | 'private'

/** A project's newest job, as the project list gives it. */
export interface LastJob {
  number: number
  status: JobStatus
  created_at: string
  started_at: string | null
  finished_at: string | null
}

export interface Project {
  id: number
  owner: string
  owner_kind: 'user' | 'team'
  name: string
  /** "owner/name" */
  full_name: string
  description: string
  visibility: Visibility
  job_network: boolean
  /** The caller's role on it; null for a public project they have none on. */
  role: string | null
  last_job: LastJob | null
  created_at: string
  updated_at: string
}

export interface ProjectQuery {
  owner?: string
  search?: string
  /** Only projects the caller has a role on, not every public one. */
  mine?: boolean
  /** name, created or activity; a leading - for descending. */
  ordering?: string
  page?: number
  page_size?: number
}

export interface NewProject {
  name: string
  description?: string
  visibility?: Visibility
  /** A team's name; the caller's own by default. */
  owner?: string
}

/** A metric key a project's jobs reported, and how many jobs did. */
export interface MetricKey {
  key: string
  jobs: number
  /** Recorded by the agent (CPU, memory, GPUs) rather than the job's code. */
  system: boolean
}

export const projectPath = (owner: string, name: string) =>
  `projects/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`

export const projectsPath = (params: ProjectQuery = {}) => `projects${query({ ...params })}`

export const listProjects = (params: ProjectQuery = {}) => get<Page<Project>>(projectsPath(params))
export const getProject = (owner: string, name: string) => get<Project>(projectPath(owner, name))
export const createProject = (project: NewProject) => post<Project>('projects', project)

export const metricKeysPath = (owner: string, name: string) => `${projectPath(owner, name)}/metric-keys?page_size=200`
