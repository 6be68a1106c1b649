import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ComparedJob } from '../api/metrics'
import { FakeUPlot } from '../components/charts/fakeUPlot'
import { apiError, fakeApi, type Call } from '../test/fakeApi'
import { alice, renderApp } from '../test/render'
import { parseJobs } from './ComparePage'

// jsdom has no canvas: uPlot is replaced by a recording fake in these component tests only;
// the real chart is covered by the Chromium end-to-end tests.
vi.mock('uplot', async () => ({ default: (await import('../components/charts/fakeUPlot')).FakeUPlot }))

beforeEach(() => {
  FakeUPlot.made = []
})
afterEach(() => vi.unstubAllGlobals())

const PROJECT = '/api/v1/projects/alice/mnist'

const latest = (value: number) => ({ value, step: 9, timestamp: 0 })

function compared(number: number, params: Record<string, string>, metrics: Record<string, number>): ComparedJob {
  return {
    number,
    name: `alice/mnist/${number}`,
    status: 'succeeded',
    params,
    latest: Object.fromEntries(Object.entries(metrics).map(([key, value]) => [key, latest(value)])),
  }
}

const comparison = {
  project: 'alice/mnist',
  jobs: [
    compared(1, { lr: '0.1', epochs: '10' }, { loss: 0.5, acc: 0.8, 'system/cpu_percent': 90 }),
    compared(2, { lr: '0.01', epochs: '10', seed: '7' }, { loss: 0.25, acc: 0.9 }),
  ],
}

const series = (call: Call) => {
  const job = /jobs\/(\d+)\//.exec(call.url)![1]
  const step = Number(job)
  return { key: 'loss', points: 1, width: 1, buckets: [{ first_step: step, last_step: step, points: 1, min: 1, max: 1, mean: 1, last: 1 }] }
}

describe('ComparePage', () => {
  it('shows params with differing rows marked, final metrics and overlaid charts of shared keys', async () => {
    const api = fakeApi({
      '/api/v1/user': alice,
      [`${PROJECT}/compare`]: comparison,
      [`${PROJECT}/jobs/1/metrics/series`]: series,
      [`${PROJECT}/jobs/2/metrics/series`]: series,
    })
    renderApp('/alice/projects/mnist/compare?jobs=1,2')

    const lr = await screen.findByRole('rowheader', { name: 'lr' })
    expect(lr.closest('tr')).toHaveClass('differs')
    expect(screen.getByRole('rowheader', { name: 'epochs' }).closest('tr')).not.toHaveClass('differs')
    expect(screen.getByRole('rowheader', { name: 'seed' }).closest('tr')).toHaveClass('differs')
    expect(within(screen.getByRole('rowheader', { name: 'acc' }).closest('tr')!).getAllByRole('cell').map((c) => c.textContent)).toEqual(['0.8', '0.9'])

    const charts = await screen.findAllByTestId('metric-chart')
    expect(charts.map((chart) => chart.dataset.metric)).toEqual(['acc', 'loss'])
    const legend = within(charts[1]).getByRole('link', { name: 'Job 2' })
    expect(legend).toHaveAttribute('href', '/alice/projects/mnist/2')
    await waitFor(() => expect(FakeUPlot.live()).toHaveLength(2))
    // Both jobs on one x: job 1's point at step 1, job 2's at step 2.
    expect(FakeUPlot.live()[1].data.slice(0, 2)).toEqual([[1, 2], [1, null]])
    expect(api.calls.find((call) => call.url.includes('/compare'))?.url).toBe(`${PROJECT}/compare?jobs=1%2C2`)
  })

  it('hides the params that agree when asked, in the address', async () => {
    fakeApi({ '/api/v1/user': alice, [`${PROJECT}/compare`]: comparison })
    renderApp('/alice/projects/mnist/compare?jobs=1,2')

    await userEvent.click(await screen.findByLabelText('Only params that differ'))

    expect(screen.queryByRole('rowheader', { name: 'epochs' })).not.toBeInTheDocument()
    expect(screen.getByRole('rowheader', { name: 'lr' })).toBeInTheDocument()
  })

  it('removes a job and adds one, each as a new address', async () => {
    const api = fakeApi({ '/api/v1/user': alice, [`${PROJECT}/compare`]: comparison })
    renderApp('/alice/projects/mnist/compare?jobs=1,2')
    await screen.findByRole('rowheader', { name: 'lr' })

    await userEvent.click(screen.getByRole('button', { name: 'Remove job 1' }))
    await waitFor(() => expect(api.calls.at(-1)?.url).toBe(`${PROJECT}/compare?jobs=2`))

    await userEvent.type(screen.getByLabelText('Add job'), '5')
    await userEvent.click(screen.getByRole('button', { name: 'Add' }))
    await waitFor(() => expect(api.calls.at(-1)?.url).toBe(`${PROJECT}/compare?jobs=2%2C5`))
  })

  it('says what is wrong when no jobs are named, without asking the server', async () => {
    const api = fakeApi({ '/api/v1/user': alice })
    renderApp('/alice/projects/mnist/compare')

    expect(await screen.findByRole('alert')).toHaveTextContent('Choose the jobs to compare')
    expect(api.calls.some((call) => call.url.includes('/compare'))).toBe(false)
  })

  it('shows the server’s message for a job that does not exist', async () => {
    fakeApi({ '/api/v1/user': alice, [`${PROJECT}/compare`]: apiError(404, 'alice/mnist has no job 9.') })
    renderApp('/alice/projects/mnist/compare?jobs=1,9')

    expect(await screen.findByRole('alert')).toHaveTextContent('alice/mnist has no job 9.')
    expect(screen.getByRole('button', { name: 'Remove job 9' })).toBeInTheDocument()
  })
})

describe('parseJobs', () => {
  it('reads numbers and refuses what is not one, or too many', () => {
    expect(parseJobs('3, 1,3')).toEqual({ numbers: [3, 1] })
    expect(parseJobs('1,x')).toEqual({ problem: expect.stringContaining('“x” is not a job number') })
    expect(parseJobs(Array.from({ length: 21 }, (_, i) => i + 1).join(','))).toEqual({
      problem: expect.stringContaining('At most 20 jobs'),
    })
  })
})
