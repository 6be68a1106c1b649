import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { apiError, fakeApi, page, reply } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'
import { aJob, JOB_API } from './jobTesting'

// The panels of the metrics and system tabs are another page's work, tested there; uPlot
// needs a browser's canvas, which jsdom lacks.
vi.mock('uplot', () => ({ default: class {} }))
vi.mock('./MetricsPanel', () => ({ MetricsPanel: ({ job }: { job: { name: string } }) => <p>metrics of {job.name}</p> }))
vi.mock('./SystemPanel', () => ({ SystemPanel: ({ job }: { job: { name: string } }) => <p>system of {job.name}</p> }))

afterEach(() => vi.unstubAllGlobals())

const events = page([
  { from_status: '', to_status: 'queued', reason: 'submitted', created_at: '2026-11-27T10:00:00Z' },
  { from_status: 'queued', to_status: 'running', reason: '', created_at: '2026-11-27T10:00:30Z' },
  { from_status: 'running', to_status: 'succeeded', reason: 'exit 0', created_at: '2026-11-27T10:05:00Z' },
])

function api(routes: Record<string, unknown> = {}) {
  return fakeApi({ '/api/v1/user': alice, [JOB_API]: aJob(), [`${JOB_API}/events`]: events, ...routes })
}

describe('the job page', () => {
  it('shows the overview: what ran, where, with what, when, and the timeline', async () => {
    api()
    renderApp('/alice/projects/mnist/7')

    expect(await screen.findByText('python train.py --epochs 3')).toBeInTheDocument()
    expect(screen.getByRole('heading', { level: 1 })).toHaveTextContent('mnist #7')
    expect(screen.getByText('first try with dropout')).toBeInTheDocument()
    expect(screen.getByText('pytorch-2.5')).toBeInTheDocument()
    expect(screen.getByText('gpu-box-1 (docker)')).toBeInTheDocument()
    expect(screen.getByText('0, 2')).toBeInTheDocument()
    expect(screen.getByRole('link', { name: 'alice/mnist-data/3' })).toHaveAttribute('href', '/alice/datasets/mnist-data/3')
    expect(screen.getByRole('link', { name: 'alice/mnist/5/output' })).toHaveAttribute(
      'href',
      '/alice/projects/mnist/5?tab=output',
    )
    expect(screen.getByText('adam')).toBeInTheDocument()
    expect(screen.getByTestId('job-duration')).toHaveTextContent('4m 30s')
    expect(screen.getByRole('tab', { name: 'Overview' })).toHaveAttribute('aria-selected', 'true')
    expect(await screen.findByText('exit 0')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Stop' })).not.toBeInTheDocument()
  })

  it('says where a queued job stands in the queue', async () => {
    const queued = { status: 'queued' as const, started_at: null, finished_at: null, exit_code: null }
    api({ [JOB_API]: aJob({ ...queued, status_reason: 'no gpu free; position 2 of 5', queue_position: 2, queue_length: 5 }) })
    renderApp('/alice/projects/mnist/7')
    expect(await screen.findByText('no gpu free; position 2 of 5')).toBeInTheDocument()
  })

  it('says a job that does not exist was not found, with a way back to the project', async () => {
    api({ [JOB_API]: apiError(404, 'There is no job 7.') })
    renderApp('/alice/projects/mnist/7')
    expect(await screen.findByRole('alert')).toHaveTextContent('Job #7 was not found in alice/mnist')
    expect(screen.getByRole('link', { name: 'Back to alice/mnist' })).toHaveAttribute('href', '/alice/projects/mnist')
  })

  it('shows other errors with a way to try again', async () => {
    api({ [JOB_API]: reply(500, undefined) })
    renderApp('/alice/projects/mnist/7')
    expect(await screen.findByRole('alert')).toHaveTextContent('Ferry failed to answer')
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument()
  })

  it('asks before stopping, and shows why a stop was refused', async () => {
    const running = aJob({ status: 'running', finished_at: null, exit_code: null })
    const calls = api({
      [JOB_API]: running,
      [`POST ${JOB_API}/stop`]: apiError(403, 'Only members may stop jobs.'),
    }).calls
    renderApp('/alice/projects/mnist/7')

    await userEvent.click(await screen.findByRole('button', { name: 'Stop' }))
    expect(calls.some((call) => call.method === 'POST')).toBe(false)
    const confirm = screen.getByRole('group', { name: 'Stop the job' })
    await userEvent.click(within(confirm).getByRole('button', { name: 'Stop job' }))

    expect(await within(confirm).findByRole('alert')).toHaveTextContent('Only members may stop jobs.')
    expect(calls.filter((call) => call.method === 'POST').map((call) => call.url)).toEqual([`${JOB_API}/stop`])
  })

  it('shows the stopping job once the stop is accepted', async () => {
    api({
      [JOB_API]: aJob({ status: 'running', finished_at: null, exit_code: null }),
      [`POST ${JOB_API}/stop`]: reply(202, aJob({ status: 'stopping', finished_at: null, exit_code: null })),
    })
    renderApp('/alice/projects/mnist/7')
    await userEvent.click(await screen.findByRole('button', { name: 'Stop' }))
    await userEvent.click(screen.getByRole('button', { name: 'Stop job' }))
    expect(await screen.findByText('stopping')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Stop' })).not.toBeInTheDocument()
  })

  it('restarts with the changed command and machine, then opens the new job', async () => {
    const { calls } = api({
      '/api/v1/machine-types': page([
        { name: 'cpu', description: '', cpus: 2, memory_mb: 4096, gpus: 0, gpu_model: '', is_default: true },
        { name: 'gpu', description: '', cpus: 8, memory_mb: 32768, gpus: 1, gpu_model: 'A100', is_default: false },
      ]),
      '/api/v1/environments': page([{ name: 'pytorch-2.5', description: '', image: 'x', gpu_image: 'y', is_default: true }]),
      [`POST ${JOB_API}/restart`]: reply(202, aJob({ id: 50, number: 8, status: 'queued' })),
      '/api/v1/projects/alice/mnist/jobs/8': aJob({ id: 50, number: 8, status: 'queued', command: 'python train.py --epochs 9' }),
      '/api/v1/projects/alice/mnist/jobs/8/events': page([]),
    })
    renderApp('/alice/projects/mnist/7')

    await userEvent.click(await screen.findByRole('button', { name: 'Restart' }))
    const form = screen.getByRole('form', { name: 'Restart the job' })
    const command = within(form).getByLabelText('Command')
    expect(command).toHaveValue('python train.py --epochs 3')
    await userEvent.clear(command)
    await userEvent.type(command, 'python train.py --epochs 9')
    await within(form).findByRole('option', { name: /cpu — 2 CPU/ })
    await userEvent.selectOptions(within(form).getByLabelText('Machine'), 'cpu')
    await userEvent.click(within(form).getByRole('button', { name: 'Restart job' }))

    await waitFor(() => expect(screen.getByRole('heading', { level: 1 })).toHaveTextContent('mnist #8'))
    expect(await screen.findByText('python train.py --epochs 9', { selector: 'code' })).toBeInTheDocument()
    expect(screen.queryByRole('form', { name: 'Restart the job' })).not.toBeInTheDocument()
    const restart = calls.find((call) => call.url === `${JOB_API}/restart`)
    expect(restart?.body).toEqual({ command: 'python train.py --epochs 9', machine: 'cpu' })
  })

  it('shows a refused restart in the form, next to the field', async () => {
    api({
      '/api/v1/machine-types': page([]),
      '/api/v1/environments': page([]),
      [`POST ${JOB_API}/restart`]: apiError(400, 'Check the command.', { command: ['The command may not be empty.'] }),
    })
    renderApp('/alice/projects/mnist/7')
    await userEvent.click(await screen.findByRole('button', { name: 'Restart' }))
    await userEvent.clear(screen.getByLabelText('Command'))
    await userEvent.click(screen.getByRole('button', { name: 'Restart job' }))
    expect(await screen.findByText('The command may not be empty.')).toBeInTheDocument()
    expect(screen.getByRole('alert')).toHaveTextContent('Check the command.')
  })

  it('shows the metrics and system panels on their tabs', async () => {
    api()
    renderApp('/alice/projects/mnist/7?tab=metrics')
    expect(await screen.findByText('metrics of alice/mnist/7')).toBeInTheDocument()
    expect(screen.getByRole('tab', { name: 'Metrics' })).toHaveAttribute('aria-selected', 'true')
    await userEvent.click(screen.getByRole('tab', { name: 'System' }))
    expect(screen.getByText('system of alice/mnist/7')).toBeInTheDocument()
    expect(screen.getByRole('tab', { name: 'System' })).toHaveAttribute('aria-selected', 'true')
  })
})

const files = [
  { path: 'model.pt', name: 'model.pt', kind: 'file', size: 2048, digest: 'd1', mode: 0o644, url: null },
  { path: 'plots/loss.png', name: 'loss.png', kind: 'file', size: 512, digest: 'd2', mode: 0o644, url: 'https://s3.test/d2?sig=1' },
  { path: 'plots/deep/acc.png', name: 'acc.png', kind: 'file', size: 512, digest: 'd3', mode: 0o644, url: null },
]

function manifestOf(call: { url: string }) {
  const path = new URL(call.url, 'http://ferry.test').searchParams.get('path') ?? ''
  return page(files.filter((file) => !path || file.path === path || file.path.startsWith(`${path}/`)))
}

describe('the output tab', () => {
  it('lists folders first with their sizes, and links each file for download', async () => {
    api({ [`${JOB_API}/output/manifest`]: manifestOf })
    renderApp('/alice/projects/mnist/7?tab=output')

    const rows = await screen.findAllByRole('row')
    expect(rows.map((row) => row.textContent)).toEqual([
      'NameSizeFilesDownload',
      'plots/1.0 KB2',
      'model.pt2.0 KBDownload',
    ])
    expect(screen.getByRole('link', { name: 'Download model.pt' })).toHaveAttribute(
      'href',
      `${JOB_API}/output/files/model.pt`,
    )
  })

  it('opens a folder through ?path=, with a trail back to the top', async () => {
    const { calls } = api({ [`${JOB_API}/output/manifest`]: manifestOf })
    renderApp('/alice/projects/mnist/7?tab=output')

    await userEvent.click(await screen.findByRole('link', { name: 'plots/' }))
    expect(await screen.findByRole('link', { name: 'Download loss.png' })).toHaveAttribute('href', 'https://s3.test/d2?sig=1')
    expect(screen.getByRole('link', { name: 'deep/' })).toHaveAttribute('href', '/alice/projects/mnist/7?tab=output&path=plots%2Fdeep')
    expect(calls.some((call) => call.url.includes('path=plots'))).toBe(true)

    await userEvent.click(screen.getByRole('link', { name: 'deep/' }))
    expect(await screen.findByRole('link', { name: 'Download acc.png' })).toHaveAttribute(
      'href',
      `${JOB_API}/output/files/plots/deep/acc.png`,
    )
    await userEvent.click(within(screen.getByRole('navigation', { name: 'Folder' })).getByRole('link', { name: 'output' }))
    expect(await screen.findByRole('link', { name: 'Download model.pt' })).toBeInTheDocument()
  })

  it('says when the output is empty, and when a running job has none saved yet', async () => {
    api({ [`${JOB_API}/output/manifest`]: page([]) })
    const first = renderApp('/alice/projects/mnist/7?tab=output')
    expect(await screen.findByText('The job saved an empty output.')).toBeInTheDocument()
    first.unmount()

    api({ [JOB_API]: aJob({ status: 'running', output: null, finished_at: null, exit_code: null }) })
    renderApp('/alice/projects/mnist/7?tab=output')
    expect(await screen.findByText(/The output is saved when the job ends/)).toBeInTheDocument()
  })
})
