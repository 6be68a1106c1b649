// Projects and jobs as the API answers them, for the pages' component tests: each test changes
// only the fields it is about, so a new field on the server's side is added here once.
import type { Job, ListedJob } from '../api/jobs'
import type { Project } from '../api/projects'

/** alice's private project `name`; its id comes from the name, so that lists get distinct keys. */
export function sampleProject(name = 'mnist', changes: Partial<Project> = {}): Project {
  return {
    id: [...name].reduce((sum, letter) => sum * 31 + letter.charCodeAt(0), 7),
    owner: 'alice',
    owner_kind: 'user',
    name,
    full_name: `alice/${name}`,
    description: '',
    visibility: 'private',
    job_network: true,
    role: 'owner',
    last_job: null,
    created_at: '2026-11-01T10:00:00Z',
    updated_at: '2026-11-01T10:00:00Z',
    ...changes,
  }
}

/** Job alice/mnist #1, which ran five minutes and succeeded, with no inputs, params, output or host. */
export function sampleJob(changes: Partial<Job> = {}): Job {
  return {
    id: 1,
    number: 1,
    name: 'alice/mnist/1',
    project: 'alice/mnist',
    mode: 'job',
    command: 'python train.py',
    message: '',
    environment: 'python-3.11',
    machine: 'cpu',
    code: null,
    inputs: [],
    params: {},
    max_runtime_s: null,
    priority: 0,
    replicas: 1,
    max_retries: 0,
    attempt: 1,
    status: 'succeeded',
    status_reason: '',
    queue_position: null,
    queue_length: null,
    exit_code: 0,
    output: null,
    output_size: null,
    output_at: null,
    host: null,
    created_by: 'alice',
    created_at: '2026-11-02T10:00:00Z',
    started_at: '2026-11-02T10:00:00Z',
    finished_at: '2026-11-02T10:05:00Z',
    ...changes,
  }
}

/** The same job as a jobs list gives it: with the metric columns asked for (none here). */
export function sampleListedJob(changes: Partial<ListedJob> = {}): ListedJob {
  return { ...sampleJob(), metrics: {}, ...changes }
}
