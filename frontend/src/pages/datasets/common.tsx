// What the three dataset pages share: a pager whose page number lives in the address.
import { Link, useSearchParams } from 'react-router-dom'
import type { Page } from '../../api/client'

/** The page number `?page=` asks for: 1 for anything that is not a positive whole number. */
export function usePageParam(): [number, (page: number) => string] {
  const [params] = useSearchParams()
  const raw = Number(params.get('page') ?? '1')
  const current = Number.isInteger(raw) && raw > 0 ? raw : 1
  function hrefFor(page: number): string {
    const next = new URLSearchParams(params)
    if (page > 1) next.set('page', String(page))
    else next.delete('page')
    const text = next.toString()
    return text ? `?${text}` : '?'
  }
  return [current, hrefFor]
}

export function Pager({ data, page, size, hrefFor, what }: {
  data: Page<unknown>
  page: number
  size: number
  hrefFor: (page: number) => string
  what: string
}) {
  if (!data.next && !data.previous) return null
  const pages = Math.max(1, Math.ceil(data.count / size))
  return (
    <nav className="pager" aria-label={`Pages of ${what}`}>
      {data.previous ? <Link to={hrefFor(page - 1)}>← Previous</Link> : <span className="muted">← Previous</span>}
      <span>
        Page {page} of {pages} ({data.count.toLocaleString()} {what})
      </span>
      {data.next ? <Link to={hrefFor(page + 1)}>Next →</Link> : <span className="muted">Next →</span>}
    </nav>
  )
}
