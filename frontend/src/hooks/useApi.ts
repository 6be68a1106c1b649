import { useCallback, useEffect, useState } from 'react'
import { ApiError, get } from '../api/client'

export interface Loaded<T> {
  data: T | undefined
  error: ApiError | undefined
  /** True from a path's first request until its answer; a reload keeps showing the old data. */
  loading: boolean
  /** Fetch again, keeping what is shown until the answer comes. */
  reload(): void
}

interface Answer<T> {
  key: string
  data: T | undefined
  error: ApiError | undefined
}

export type Loader<T> = (path: string, signal: AbortSignal) => Promise<T>

/**
 * What `path` answers, fetched whenever the path changes or `reload` is called; the answer to
 * an older path is dropped. A null path fetches nothing (a value still unknown). `load` must
 * be a stable function (defined outside the component): it is `get`, or e.g. `getAll`.
 */
export function useApi<T>(path: string | null, load: Loader<T> = get): Loaded<T> {
  const [generation, setGeneration] = useState(0)
  const [answer, setAnswer] = useState<Answer<T>>({ key: '', data: undefined, error: undefined })
  const key = path === null ? '' : `${generation}:${path}`

  useEffect(() => {
    if (path === null) return
    const controller = new AbortController()
    load(path, controller.signal).then(
      (data) => setAnswer({ key, data, error: undefined }),
      (reason: unknown) => {
        if (controller.signal.aborted) return
        const error = reason instanceof ApiError ? reason : new ApiError(0, 'error', String(reason))
        // Keep the last data shown: a failed refresh should not blank the page.
        setAnswer((previous) => ({ key, data: previous.data, error }))
      },
    )
    return () => controller.abort()
  }, [path, key, load])

  const reload = useCallback(() => setGeneration((g) => g + 1), [])
  return { data: answer.data, error: answer.error, loading: path !== null && answer.key !== key, reload }
}

/** Calls `tick` every `ms` milliseconds while `active`. */
export function useInterval(tick: () => void, ms: number, active = true): void {
  useEffect(() => {
    if (!active) return
    const timer = window.setInterval(tick, ms)
    return () => window.clearInterval(timer)
  }, [tick, ms, active])
}
