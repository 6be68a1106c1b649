import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ListedJob } from '../api/jobs'
import { apiError, fakeApi, page, reply, type Route } from '../test/fakeApi'
import { sampleListedJob, sampleProject } from '../test/fixtures'
import { alice, renderApp } from '../test/render'

afterEach(() => vi.unstubAllGlobals())

const MY_PROJECTS = '/api/v1/projects?mine=true&ordering=-activity&page_size=10'
const ACTIVE_JOBS = '/api/v1/jobs?status=queued%2Cscheduled%2Cstarting%2Crunning%2Cstopping&page_size=20'
const DATASETS = '/api/v1/datasets?page_size=6'

/** A job of another team's project, started 90 seconds ago. */
function runningJob(): ListedJob {
  const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString()
  return sampleListedJob({
    id: 9,
    number: 7,
    name: 'lab/shared/7',
    project: 'lab/shared',
    status: 'running',
    message: 'bigger batch',
    command: 'python train.py',
    machine: 'gpu',
    environment: 'pytorch-2.5',
    exit_code: null,
    created_by: 'bob',
    created_at: ago(120),
    started_at: ago(90),
    finished_at: null,
  })
}

function dataset(id: number, name: string) {
  return {
    id,
    owner: 'alice',
    name,
    full_name: `alice/${name}`,
    description: '',
    visibility: 'private',
    latest_version: 2,
    created_at: `2026-10-${String(id).padStart(2, '0')}T10:00:00Z`,
    updated_at: `2026-11-${String(id).padStart(2, '0')}T10:00:00Z`,
  }
}

function serve(routes: Record<string, Route> = {}) {
  return fakeApi({
    '/api/v1/user': alice,
    [MY_PROJECTS]: page([]),
    [ACTIVE_JOBS]: page([]),
    [DATASETS]: page([]),
    ...routes,
  })
}

describe('the dashboard', () => {
  it("shows the user's projects with their newest job, what runs, and recent datasets", async () => {
    serve({
      [MY_PROJECTS]: page([
        sampleProject('mnist', {
          description: 'digits',
          last_job: { number: 3, status: 'failed', created_at: '2026-11-02T10:00:00Z', started_at: null, finished_at: null },
        }),
        sampleProject('empty'),
      ]),
      [ACTIVE_JOBS]: page([runningJob()]),
      [DATASETS]: page([dataset(1, 'cifar')]),
    })

    renderApp('/')

    const projects = await screen.findByRole('region', { name: 'My projects' })
    expect(await within(projects).findByRole('link', { name: 'alice/mnist' })).toHaveAttribute('href', '/alice/projects/mnist')
    expect(within(projects).getByRole('link', { name: 'Job #3: failed' })).toHaveAttribute('href', '/alice/projects/mnist/3')
    expect(within(projects).getByText('no jobs yet')).toBeInTheDocument()

    const running = screen.getByRole('region', { name: /Running and queued jobs/ })
    const link = await within(running).findByRole('link', { name: 'lab/shared #7' })
    expect(link).toHaveAttribute('href', '/lab/projects/shared/7')
    const row = link.closest('tr')!
    expect(within(row).getByText('running')).toBeInTheDocument()
    expect(within(row).getByText('gpu')).toBeInTheDocument()
    expect(within(row).getByText(/^1m 3\ds$/)).toBeInTheDocument()

    const datasets = screen.getByRole('region', { name: 'Recent datasets' })
    expect(await within(datasets).findByRole('link', { name: 'alice/cifar' })).toHaveAttribute('href', '/alice/datasets/cifar')
  })

  it('tells a new user how to start in every empty section', async () => {
    serve()

    renderApp('/')

    expect(await screen.findByText('You have no projects yet.')).toBeInTheDocument()
    expect(screen.getByText(/ferry init alice\/mnist/)).toHaveTextContent('ferry run "python train.py"')
    expect(await screen.findByText('Nothing is running or waiting.')).toBeInTheDocument()
    expect(await screen.findByText('No datasets yet.')).toBeInTheDocument()
    expect(screen.getByText(/ferry data init mnist/)).toBeInTheDocument()
  })

  it('shows a failed section its error, and the others still', async () => {
    const api = serve({
      [ACTIVE_JOBS]: reply(500),
      [MY_PROJECTS]: page([sampleProject('mnist')]),
    })

    renderApp('/')

    const running = await screen.findByRole('region', { name: /Running and queued jobs/ })
    expect(await within(running).findByRole('alert')).toHaveTextContent('Ferry failed to answer this request')
    expect(await screen.findByRole('link', { name: 'alice/mnist' })).toBeInTheDocument()

    await userEvent.click(within(running).getByRole('button', { name: 'Try again' }))
    await waitFor(() => expect(api.calls.filter((call) => call.url === ACTIVE_JOBS)).toHaveLength(2))
  })

  it('creates a project from the form and opens it', async () => {
    const api = serve({
      'POST /api/v1/projects': sampleProject('cifar'),
      '/api/v1/projects/alice/cifar': sampleProject('cifar'),
    })
    renderApp('/')

    await userEvent.click(await screen.findByRole('button', { name: 'New project' }))
    await userEvent.type(screen.getByLabelText('Project name'), 'cifar')
    await userEvent.selectOptions(screen.getByLabelText('Visibility'), 'public')
    await userEvent.click(screen.getByRole('button', { name: 'Create project' }))

    expect(await screen.findByRole('heading', { name: 'cifar' })).toBeInTheDocument()
    const created = api.calls.find((call) => call.method === 'POST')
    expect(created?.body).toEqual({ name: 'cifar', description: '', visibility: 'public' })
  })

  it("puts the server's word on a refused project under its field", async () => {
    serve({
      'POST /api/v1/projects': apiError(400, 'name: Use letters, digits and dashes.', { name: ['Use letters, digits and dashes.'] }),
    })
    renderApp('/')

    await userEvent.click(await screen.findByRole('button', { name: 'New project' }))
    await userEvent.type(screen.getByLabelText('Project name'), 'no good')
    await userEvent.click(screen.getByRole('button', { name: 'Create project' }))

    expect(await screen.findByText('Use letters, digits and dashes.')).toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Create project' })).toBeEnabled()
  })

  it('shows the newest datasets, from the last pages of the list', async () => {
    const all = Array.from({ length: 14 }, (_, index) => dataset(index + 1, `set${index + 1}`))
    const pageOf = (number: number) => ({ count: 14, next: null, previous: null, results: all.slice((number - 1) * 6, number * 6) })
    serve({
      [DATASETS]: pageOf(1),
      [`${DATASETS}&page=2`]: pageOf(2),
      [`${DATASETS}&page=3`]: pageOf(3),
    })

    renderApp('/')

    const datasets = await screen.findByRole('region', { name: 'Recent datasets' })
    await within(datasets).findByRole('link', { name: 'alice/set14' })
    const names = within(datasets)
      .getAllByRole('link')
      .map((link) => link.textContent)
      .filter((text) => text?.startsWith('alice/'))
    expect(names).toEqual(['alice/set14', 'alice/set13', 'alice/set12', 'alice/set11', 'alice/set10', 'alice/set9'])
  })
})
