import { useCallback, useEffect, useRef, useState } from 'react'
import { ApiError } from '../../api/client'
import { getSeries, type Series } from '../../api/metrics'
import { bucketsFor, LatestOnly, seriesQuery, type StepRange } from './chartData'

/** One line of a chart: a job's series of the chart's key. */
export interface ChartSource {
  /** The job's API path ("projects/alice/mnist/jobs/3"). */
  jobApi: string
  label: string
  /** Where the legend links to (the job's page); none on a job's own page. */
  href?: string
}

export interface SeriesState {
  /** One per source, in order; null where that job has no such series. */
  series: (Series | null)[] | undefined
  error: ApiError | undefined
  loading: boolean
  reload(): void
}

interface Answer {
  /** The request it answers: while it differs from the current one, a fetch is under way. */
  request: string
  series: (Series | null)[] | undefined
  error: ApiError | undefined
}

interface Options {
  pixels: number
  zoom: StepRange | null
  /** Changes when the series has grown (its points or last step): then it is fetched again. */
  version?: string
  /** False while the chart is off screen: nothing is fetched for it. */
  active: boolean
}

/** The chart's series, fetched again when the key, width bucket, zoom or version changes. */
export function useSeries(sources: ChartSource[], key: string, options: Options): SeriesState {
  const { pixels, zoom, version, active } = options
  const tickets = useRef(new LatestOnly())
  const [generation, setGeneration] = useState(0)
  const [answer, setAnswer] = useState<Answer>({ request: '', series: undefined, error: undefined })
  const buckets = bucketsFor(pixels)
  const jobs = sources.map((source) => source.jobApi).join(' ')
  const from = zoom?.from
  const to = zoom?.to
  const request = JSON.stringify([jobs, key, buckets, from, to, version, generation])

  useEffect(() => {
    if (!active) return
    const ticket = tickets.current.begin()
    const controller = new AbortController()
    const [jobList, metricKey, count, first, last] = JSON.parse(request) as [string, string, number, number?, number?]
    const q = seriesQuery(metricKey, count, first === undefined || last === undefined ? null : { from: first, to: last })
    Promise.all(jobList.split(' ').map((jobApi) => getSeries(jobApi, q, controller.signal).catch(missingAsNull))).then(
      (series) => {
        if (tickets.current.isCurrent(ticket)) setAnswer({ request, series, error: undefined })
      },
      (reason: unknown) => {
        if (controller.signal.aborted || !tickets.current.isCurrent(ticket)) return
        const error = reason instanceof ApiError ? reason : new ApiError(0, 'error', String(reason))
        // The lines already drawn stay under the message.
        setAnswer((previous) => ({ request, series: previous.series, error }))
      },
    )
    return () => controller.abort()
  }, [request, active])

  const reload = useCallback(() => setGeneration((g) => g + 1), [])
  const { series, error } = answer
  return { series, error: answer.request === request ? error : undefined, loading: active && answer.request !== request, reload }
}

/** A job without the key (on the compare page) draws no line; any other failure is an error. */
function missingAsNull(reason: unknown): null {
  if (reason instanceof ApiError && reason.status === 404 && reason.code === 'unknown_metric') return null
  throw reason
}
