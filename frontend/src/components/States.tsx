import type { ReactNode } from 'react'
import { Link } from 'react-router-dom'
import type { ApiError } from '../api/client'

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </div>
  )
}

export function ErrorMessage({ error, retry }: { error: ApiError | Error | string; retry?: () => void }) {
  const message = typeof error === 'string' ? error : error.message
  return (
    <div className="state state-error" role="alert">
      <span>{message}</span>
      {retry && (
        <button type="button" className="button small" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  )
}

/** A 404 from the API, with the way back to where the missing thing would be listed. */
export function NotFound({ error, back, backLabel }: { error: ApiError; back: string; backLabel: string }) {
  return (
    <div className="state state-error" role="alert">
      <span>
        <strong>Not found.</strong> {error.message}
      </span>{' '}
      <Link to={back}>{backLabel}</Link>
    </div>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state state-empty">{children}</div>
}

/** Shows loading, the error or the content, in that order of precedence while nothing is loaded. */
export function Loaded<T>({
  data,
  error,
  loading,
  reload,
  what,
  children,
}: {
  data: T | undefined
  error?: ApiError
  loading: boolean
  reload?: () => void
  what?: string
  children: (data: T) => ReactNode
}) {
  if (data === undefined) {
    if (error) return <ErrorMessage error={error} retry={reload} />
    if (loading) return <Loading what={what} />
    return null
  }
  return (
    <>
      {error && <ErrorMessage error={error} retry={reload} />}
      {children(data)}
    </>
  )
}
