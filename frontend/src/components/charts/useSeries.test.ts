import { act, renderHook, waitFor } from '@testing-library/react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Series } from '../../api/metrics'
import type { StepRange } from './chartData'
import { useSeries } from './useSeries'

afterEach(() => vi.unstubAllGlobals())

const answer = (steps: number[]): Series => ({
  key: 'loss',
  points: 1000,
  width: 1,
  buckets: steps.map((step) => ({ first_step: step, last_step: step, points: 1, min: 1, max: 1, mean: 1, last: 1 })),
})

/** A fetch whose answers the test sends, in whatever order it likes; it ignores aborts. */
function heldFetch() {
  const pending: { url: string; send(body: unknown, status?: number): void }[] = []
  const fetchMock = vi.fn<(url: string) => Promise<Response>>(
    (url: string) =>
      new Promise<Response>((resolve) => {
        pending.push({
          url,
          send: (body, status = 200) => resolve(new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })),
        })
      }),
  )
  vi.stubGlobal('fetch', fetchMock)
  return pending
}

const sources = [{ jobApi: 'projects/alice/mnist/jobs/3', label: 'loss' }]

describe('useSeries', () => {
  it('drops an older answer that arrives after a newer zoom', async () => {
    const pending = heldFetch()
    const { result, rerender } = renderHook(
      ({ zoom }: { zoom: StepRange | null }) => useSeries(sources, 'loss', { pixels: 600, zoom, active: true }),
      { initialProps: { zoom: { from: 0, to: 500 } as StepRange | null } },
    )
    rerender({ zoom: { from: 100, to: 200 } })
    await waitFor(() => expect(pending).toHaveLength(2))
    expect(pending[1].url).toBe('/api/v1/projects/alice/mnist/jobs/3/metrics/series?key=loss&buckets=600&first_step=100&last_step=200')

    await act(async () => pending[1].send(answer([150])))
    await waitFor(() => expect(result.current.loading).toBe(false))
    await act(async () => pending[0].send(answer([0, 250, 500])))

    expect(result.current.series?.[0]?.buckets.map((b) => b.first_step)).toEqual([150])
  })

  it('gives null for a job without the key, and an error for any other failure', async () => {
    const pending = heldFetch()
    const two = [...sources, { jobApi: 'projects/alice/mnist/jobs/4', label: 'four' }]
    const { result } = renderHook(() => useSeries(two, 'loss', { pixels: 600, zoom: null, active: true }))
    await waitFor(() => expect(pending).toHaveLength(2))

    await act(async () => {
      pending[0].send(answer([1]))
      pending[1].send({ error: { code: 'unknown_metric', message: 'no such metric' } }, 404)
    })

    await waitFor(() => expect(result.current.series).toHaveLength(2))
    expect(result.current.series?.[1]).toBeNull()
    expect(result.current.error).toBeUndefined()
  })

  it('fetches nothing while off screen', () => {
    const pending = heldFetch()
    renderHook(() => useSeries(sources, 'loss', { pixels: 600, zoom: null, active: false }))
    expect(pending).toHaveLength(0)
  })
})
