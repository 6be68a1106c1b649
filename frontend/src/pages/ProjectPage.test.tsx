import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, Route, Routes, useLocation } from 'react-router-dom'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ListedJob } from '../api/jobs'
import type { MetricKey } from '../api/projects'
import { apiError, fakeApi, page, type Call } from '../test/fakeApi'
import { sampleListedJob, sampleProject } from '../test/fixtures'
import { ProjectPage } from './ProjectPage'

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

const project = sampleProject('mnist', { description: 'Handwritten digits' })

function job(number: number, changes: Partial<ListedJob> = {}): ListedJob {
  return sampleListedJob({ id: number, number, name: `alice/mnist/${number}`, ...changes })
}

const keys: MetricKey[] = [
  { key: 'loss', jobs: 3, system: false },
  { key: 'accuracy', jobs: 2, system: false },
  { key: 'system/cpu_percent', jobs: 3, system: true },
]

const JOBS = '/api/v1/projects/alice/mnist/jobs'

function LocationProbe() {
  const location = useLocation()
  return <p data-testid="location">{location.pathname + location.search}</p>
}

function renderPage(path: string) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path="/:owner/projects/:project" element={<ProjectPage />} />
        <Route path="*" element={<LocationProbe />} />
      </Routes>
    </MemoryRouter>,
  )
}

function serve(jobs: (call: Call) => unknown = () => page([job(2, { metrics: { loss: 0.25, accuracy: 'NaN' } }), job(1)])) {
  return fakeApi({
    '/api/v1/projects/alice/mnist': project,
    '/api/v1/projects/alice/mnist/metric-keys': page(keys),
    [JOBS]: jobs,
  })
}

/** The query of each request for the jobs list, as parameters. */
const jobRequests = (calls: Call[]) =>
  calls.filter((call) => call.url.split('?')[0] === JOBS).map((call) => new URL(call.url, 'http://x').searchParams)
const lastJobRequest = (calls: Call[]) => jobRequests(calls).at(-1)!

describe('the project page', () => {
  it('shows the project and its jobs with the most reported metrics as columns', async () => {
    const api = serve()

    renderPage('/alice/projects/mnist')

    expect(await screen.findByRole('heading', { name: 'mnist' })).toBeInTheDocument()
    expect(screen.getByText('Handwritten digits')).toBeInTheDocument()
    const table = await screen.findByTestId('jobs-table')
    expect(within(table).getByRole('link', { name: '#2' })).toHaveAttribute('href', '/alice/projects/mnist/2')
    expect(within(table).getByRole('columnheader', { name: /loss/ })).toBeInTheDocument()
    expect(within(table).queryByRole('columnheader', { name: /system/ })).not.toBeInTheDocument()
    const row = within(table).getByRole('link', { name: '#2' }).closest('tr')!
    expect(within(row).getByText('0.25')).toBeInTheDocument()
    expect(within(row).getByText('NaN')).toBeInTheDocument()
    expect(within(row).getByText('5m 0s')).toBeInTheDocument()
    // Read once, with the columns: not first without them.
    expect(jobRequests(api.calls)).toHaveLength(1)
    expect(lastJobRequest(api.calls).get('metrics')).toBe('loss,accuracy')
  })

  it('asks the server for what the address says', async () => {
    const api = serve()

    renderPage('/alice/projects/mnist?status=failed&search=resnet&created_by=bob&ordering=metric:loss&metrics=loss&page=2')

    await screen.findByTestId('jobs-table')
    const sent = lastJobRequest(api.calls)
    expect(Object.fromEntries(sent)).toEqual({
      status: 'failed',
      search: 'resnet',
      created_by: 'bob',
      ordering: 'metric:loss',
      metrics: 'loss',
      page: '2',
      page_size: '50',
    })
    expect(screen.getByRole('columnheader', { name: /loss/ })).toHaveAttribute('aria-sort', 'ascending')
    expect(screen.getByLabelText('Search messages and commands')).toHaveValue('resnet')
  })

  it('orders by a column when its header is clicked, then the other way round', async () => {
    const api = serve()
    renderPage('/alice/projects/mnist')
    await screen.findByTestId('jobs-table')

    await userEvent.click(screen.getByRole('button', { name: /Duration/ }))
    await waitFor(() => expect(lastJobRequest(api.calls).get('ordering')).toBe('-duration'))
    expect(screen.getByRole('columnheader', { name: /Duration/ })).toHaveAttribute('aria-sort', 'descending')

    await userEvent.click(screen.getByRole('button', { name: /Duration/ }))
    await waitFor(() => expect(lastJobRequest(api.calls).get('ordering')).toBe('duration'))

    await userEvent.click(screen.getByRole('button', { name: /^loss/ }))
    await waitFor(() => expect(lastJobRequest(api.calls).get('ordering')).toBe('-metric:loss'))
  })

  it('filters by status at once and by text when the form is sent', async () => {
    const api = serve()
    renderPage('/alice/projects/mnist?page=3')
    await screen.findByTestId('jobs-table')

    await userEvent.selectOptions(screen.getByLabelText('Status'), 'Unfinished')
    await waitFor(() => expect(lastJobRequest(api.calls).get('status')).toBe('queued,scheduled,starting,running,stopping'))
    // A new filter starts again from the first page.
    expect(lastJobRequest(api.calls).get('page')).toBeNull()

    await userEvent.type(screen.getByLabelText('Search messages and commands'), 'baseline')
    await userEvent.type(screen.getByLabelText('Created by'), 'bob{Enter}')
    await waitFor(() => expect(lastJobRequest(api.calls).get('search')).toBe('baseline'))
    expect(lastJobRequest(api.calls).get('created_by')).toBe('bob')
  })

  it('changes the metric columns from the menu', async () => {
    const api = serve()
    renderPage('/alice/projects/mnist')
    await screen.findByTestId('jobs-table')

    await userEvent.click(screen.getByText(/Metric columns/))
    await userEvent.click(screen.getByRole('checkbox', { name: 'accuracy' }))
    await waitFor(() => expect(lastJobRequest(api.calls).get('metrics')).toBe('loss'))
    await userEvent.click(screen.getByRole('checkbox', { name: 'system/cpu_percent' }))
    await waitFor(() => expect(lastJobRequest(api.calls).get('metrics')).toBe('loss,system/cpu_percent'))
  })

  it('compares the jobs selected', async () => {
    serve(() => page([job(5), job(3), job(1)]))
    renderPage('/alice/projects/mnist')
    await screen.findByTestId('jobs-table')
    const compare = screen.getByRole('button', { name: 'Compare' })
    expect(compare).toBeDisabled()

    await userEvent.click(screen.getByRole('checkbox', { name: 'Select job #5' }))
    expect(compare).toBeDisabled()
    await userEvent.click(screen.getByRole('checkbox', { name: 'Select job #1' }))
    await userEvent.click(compare)

    expect(await screen.findByTestId('location')).toHaveTextContent('/alice/projects/mnist/compare?jobs=1,5')
  })

  it('tells a new project how to run its first job', async () => {
    serve(() => page([]))
    renderPage('/alice/projects/mnist')

    expect(await screen.findByText('No jobs yet.')).toBeInTheDocument()
    expect(screen.getByText(/ferry init alice\/mnist/)).toHaveTextContent('ferry run "python train.py"')
  })

  it('offers to clear filters that match nothing', async () => {
    const api = serve(() => page([]))
    renderPage('/alice/projects/mnist?status=failed')

    expect(await screen.findByText(/No jobs match these filters/)).toBeInTheDocument()
    const clear = screen.getAllByRole('button', { name: 'Clear filters' })
    await userEvent.click(clear[clear.length - 1])
    await waitFor(() => expect(lastJobRequest(api.calls).get('status')).toBeNull())
  })

  it("shows the server's message for a bad address, and starts over", async () => {
    serve((call) => (call.url.includes('ordering=name') ? apiError(400, "ordering: Jobs cannot be ordered by 'name'.") : page([job(1)])))
    renderPage('/alice/projects/mnist?ordering=name')

    expect(await screen.findByRole('alert')).toHaveTextContent("Jobs cannot be ordered by 'name'.")
    await userEvent.click(screen.getByRole('button', { name: 'Show all jobs' }))
    expect(await screen.findByRole('link', { name: '#1' })).toBeInTheDocument()
  })

  it('shows the jobs without metric columns when the metric keys cannot be read', async () => {
    const api = fakeApi({
      '/api/v1/projects/alice/mnist': project,
      '/api/v1/projects/alice/mnist/metric-keys': apiError(503, 'The tracking store is busy.'),
      [JOBS]: page([job(1)]),
    })
    renderPage('/alice/projects/mnist')

    expect(await screen.findByRole('link', { name: '#1' })).toBeInTheDocument()
    expect(lastJobRequest(api.calls).get('metrics')).toBeNull()
    await userEvent.click(screen.getByText(/Metric columns/))
    expect(screen.getByText('The tracking store is busy.')).toBeInTheDocument()
  })

  it('says when the project is not there, and asks for no jobs', async () => {
    const api = fakeApi({ '/api/v1/projects/alice/nope': apiError(404, 'No project alice/nope here, or you may not see it.') })
    renderPage('/alice/projects/nope')

    expect(await screen.findByRole('alert')).toHaveTextContent('No project alice/nope here')
    await waitFor(() => expect(jobRequests(api.calls)).toHaveLength(0))
  })

  it('reads the jobs again while one is unfinished', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    const api = serve(() => page([job(2, { status: 'running', finished_at: null }), job(1)]))
    renderPage('/alice/projects/mnist')
    await screen.findByTestId('jobs-table')
    expect(jobRequests(api.calls)).toHaveLength(1)

    await act(async () => {
      await vi.advanceTimersByTimeAsync(5500)
    })

    await waitFor(() => expect(jobRequests(api.calls).length).toBeGreaterThan(1))
  })

  it('does not read finished jobs again', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    const api = serve()
    renderPage('/alice/projects/mnist')
    await screen.findByTestId('jobs-table')

    await act(async () => {
      await vi.advanceTimersByTimeAsync(12000)
    })

    expect(jobRequests(api.calls)).toHaveLength(1)
  })
})
