import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, useLocation } from 'react-router-dom'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Job } from '../../api/jobs'
import type { MetricSummary } from '../../api/metrics'
import { FakeUPlot } from '../../components/charts/fakeUPlot'
import { fakeApi, type Call } from '../../test/fakeApi'
import { sampleJob } from '../../test/fixtures'
import { MetricsPanel } from './MetricsPanel'
import { SystemPanel } from './SystemPanel'

// jsdom has no canvas: uPlot is replaced by a recording fake in these component tests only;
// the real chart is covered by the Chromium end-to-end tests.
vi.mock('uplot', async () => ({ default: (await import('../../components/charts/fakeUPlot')).FakeUPlot }))

beforeEach(() => {
  FakeUPlot.made = []
})
afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

const JOB_API = '/api/v1/projects/alice/mnist/jobs/3'

function job(changes: Partial<Job> = {}): Job {
  return sampleJob({
    id: 30, number: 3, name: 'alice/mnist/3', environment: 'pytorch-2.5', created_at: '2026-11-27T10:00:00Z',
    started_at: '2026-11-27T10:00:05Z', finished_at: '2026-11-27T10:10:00Z', ...changes,
  })
}

function summary(key: string, points = 3, last = 0.25): MetricSummary {
  return {
    key, points, first_step: 0, last_step: points - 1, min: 0.25, max: 1,
    latest: { value: last, step: points - 1, timestamp: 0 },
  }
}

const series = (key: string) => ({
  key, points: 3, width: 1,
  buckets: [0, 1, 2].map((step) => ({ first_step: step, last_step: step, points: 1, min: 1 / (step + 1), max: 1 / (step + 1), mean: 1 / (step + 1), last: 1 / (step + 1) })),
})

const seriesAnswer = (call: Call) => series(new URL(call.url, 'http://x').searchParams.get('key') ?? '')

function Where() {
  const location = useLocation()
  return <output data-testid="where">{location.search}</output>
}

function show(panel: React.ReactNode, search = '') {
  return render(
    <MemoryRouter initialEntries={[`/alice/projects/mnist/3?tab=metrics${search}`]}>
      {panel}
      <Where />
    </MemoryRouter>,
  )
}

const seriesCalls = (calls: Call[], key?: string) =>
  calls.filter((call) => call.url.includes('/metrics/series') && (!key || call.url.includes(`key=${encodeURIComponent(key)}&`)))

describe('MetricsPanel', () => {
  it('charts each metric of the job but the system ones, with its last, min and max', async () => {
    const api = fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('acc'), summary('loss'), summary('system/cpu_percent')] },
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<MetricsPanel job={job()} />)

    const charts = await screen.findAllByTestId('metric-chart')
    expect(charts.map((chart) => chart.dataset.metric)).toEqual(['acc', 'loss'])
    expect(screen.getByRole('heading', { name: 'loss' })).toBeInTheDocument()
    expect(within(charts[1]).getByText(/last/)).toHaveTextContent('last 0.25 at step 2')
    await waitFor(() => expect(FakeUPlot.live()).toHaveLength(2))
    // One bucket per pixel of the (default, in jsdom) 600 px width; the whole series, no range.
    expect(seriesCalls(api.calls, 'loss').map((call) => call.url)).toEqual([`${JOB_API}/metrics/series?key=loss&buckets=600`])
    expect(FakeUPlot.live()[1].data[0]).toEqual([0, 1, 2])
    expect(charts[1]).toHaveAttribute('data-state', 'ready')
  })

  it('filters the charts by ?metrics= and keeps the filter in the address', async () => {
    fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('train/loss'), summary('val/loss'), summary('val/acc')] },
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<MetricsPanel job={job()} />, '&metrics=acc')

    const charts = await screen.findAllByTestId('metric-chart')
    expect(charts.map((chart) => chart.dataset.metric)).toEqual(['val/acc'])

    const box = screen.getByLabelText('Filter metrics')
    await userEvent.clear(box)
    await userEvent.type(box, 'loss')
    expect(screen.getAllByTestId('metric-chart').map((chart) => chart.dataset.metric)).toEqual(['train/loss', 'val/loss'])
    expect(screen.getByTestId('where')).toHaveTextContent('tab=metrics&metrics=loss')

    await userEvent.clear(box)
    await userEvent.type(box, 'nothing')
    expect(screen.getByText(/No metric matches/)).toBeInTheDocument()
  })

  it('zooms by a drag: fetches only that range, puts it in the address, and resets', async () => {
    const api = fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('loss', 1_000_000)] },
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<MetricsPanel job={job()} />)
    await waitFor(() => expect(FakeUPlot.live()).toHaveLength(1))

    act(() => FakeUPlot.live()[0].drag(100.4, 250.6))

    await waitFor(() => expect(seriesCalls(api.calls)).toHaveLength(2))
    expect(seriesCalls(api.calls)[1].url).toBe(`${JOB_API}/metrics/series?key=loss&buckets=600&first_step=101&last_step=250`)
    expect(screen.getByTestId('where')).toHaveTextContent('zoom=loss%3A101-250')
    expect(FakeUPlot.live()[0].options.scales?.x?.range).toEqual([101, 250])

    await userEvent.click(screen.getByRole('button', { name: 'Reset zoom' }))
    await waitFor(() => expect(seriesCalls(api.calls)).toHaveLength(3))
    expect(seriesCalls(api.calls)[2].url).toBe(`${JOB_API}/metrics/series?key=loss&buckets=600`)
    expect(screen.getByTestId('where')).not.toHaveTextContent('zoom')
  })

  it('opens zoomed from a shared address', async () => {
    const api = fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('loss', 1000)] },
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<MetricsPanel job={job()} />, '&zoom=loss:10-20')

    expect(await screen.findByRole('button', { name: 'Reset zoom' })).toBeInTheDocument()
    await waitFor(() => expect(seriesCalls(api.calls)).toHaveLength(1))
    expect(seriesCalls(api.calls)[0].url).toContain('first_step=10&last_step=20')
  })

  it('shows the step and value under the cursor', async () => {
    fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('loss')] },
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<MetricsPanel job={job()} />)
    await waitFor(() => expect(FakeUPlot.live()).toHaveLength(1))

    act(() => FakeUPlot.live()[0].hover(1))

    expect(screen.getByText('step 1')).toBeInTheDocument()
    expect(screen.getByText('0.5')).toBeInTheDocument()
  })

  it('says "no points yet" for an empty series', async () => {
    fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('loss')] },
      [`${JOB_API}/metrics/series`]: { key: 'loss', points: 0, width: 1, buckets: [] },
    })
    show(<MetricsPanel job={job()} />)

    expect(await screen.findByText('No points yet.')).toBeInTheDocument()
    expect(FakeUPlot.live()).toHaveLength(0)
  })

  it('shows a chart error with a retry', async () => {
    const { reply } = await import('../../test/fakeApi')
    fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('loss')] },
      [`${JOB_API}/metrics/series`]: reply(503, { error: { code: 'x', message: 'The database is away.' } }),
    })
    show(<MetricsPanel job={job()} />)

    expect(await screen.findByRole('alert')).toHaveTextContent('The database is away.')
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument()
  })

  it('says so when the job has no metrics', async () => {
    fakeApi({ [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('system/memory_mb')] } })
    show(<MetricsPanel job={job()} />)
    expect(await screen.findByText(/recorded no metrics yet/)).toBeInTheDocument()
  })

  it('refreshes a running job, refetching only the series that grew', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    let lossPoints = 3
    const api = fakeApi({
      [`${JOB_API}/tracking`]: () => ({ params: {}, tags: {}, metrics: [summary('acc'), summary('loss', lossPoints)] }),
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<MetricsPanel job={job({ status: 'running', finished_at: null })} />)
    await waitFor(() => expect(seriesCalls(api.calls)).toHaveLength(2))

    lossPoints = 4
    await act(() => vi.advanceTimersByTimeAsync(5000))

    await waitFor(() => expect(seriesCalls(api.calls, 'loss')).toHaveLength(2))
    expect(seriesCalls(api.calls, 'acc')).toHaveLength(1)
    expect(api.calls.filter((call) => call.url.endsWith('/tracking'))).toHaveLength(2)
  })
})

describe('SystemPanel', () => {
  it('charts CPU, memory and each GPU against time, in that order', async () => {
    fakeApi({
      [`${JOB_API}/tracking`]: {
        params: {}, tags: {},
        metrics: ['loss', 'system/gpu0/memory_used_mb', 'system/gpu0/utilization_percent', 'system/memory_mb', 'system/cpu_percent'].map((key) => summary(key)),
      },
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<SystemPanel job={job()} />)

    const charts = await screen.findAllByTestId('metric-chart')
    expect(charts.map((chart) => chart.dataset.metric)).toEqual([
      'system/cpu_percent', 'system/memory_mb', 'system/gpu0/memory_used_mb', 'system/gpu0/utilization_percent',
    ])
    expect(screen.getByText('GPU 0 utilization, %')).toBeInTheDocument()
    await waitFor(() => expect(FakeUPlot.live()).toHaveLength(4))
    expect(FakeUPlot.live()[0].options.series[0].label).toBe('seconds')
  })

  it('shows CPU and memory only for a job without GPUs', async () => {
    fakeApi({
      [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('system/cpu_percent'), summary('system/memory_mb')] },
      [`${JOB_API}/metrics/series`]: seriesAnswer,
    })
    show(<SystemPanel job={job()} />)
    expect((await screen.findAllByTestId('metric-chart')).map((chart) => chart.dataset.metric)).toEqual(['system/cpu_percent', 'system/memory_mb'])
  })

  it('says so when the job has no system samples', async () => {
    fakeApi({ [`${JOB_API}/tracking`]: { params: {}, tags: {}, metrics: [summary('loss')] } })
    show(<SystemPanel job={job()} />)
    expect(await screen.findByText(/No system samples for this job/)).toBeInTheDocument()
  })
})
