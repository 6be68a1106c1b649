// The one way the UI talks to Ferry's REST API: same-origin requests carrying the session
// cookie, Django's CSRF token on every unsafe method, and the API's error body turned into an
// ApiError whose message says what to change.

export const API = '/api/v1'

export interface Page<T> {
  count: number
  next: string | null
  previous: string | null
  results: T[]
}

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly fields: Record<string, string[]>

  constructor(status: number, code: string, message: string, fields: Record<string, string[]> = {}) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.fields = fields
  }
}

export function cookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=')
    if (key === name) return decodeURIComponent(rest.join('='))
  }
  return null
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export interface RequestOptions {
  method?: string
  body?: unknown
  signal?: AbortSignal
}

/** A path under /api/v1 (or a full same-origin URL, as a page's `next` is) to fetch. */
export function apiUrl(path: string): string {
  if (path.startsWith('http://') || path.startsWith('https://') || path.startsWith('/')) return path
  return `${API}/${path}`
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = options.method ?? 'GET'
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  if (!SAFE_METHODS.has(method)) headers['X-CSRFToken'] = cookie('csrftoken') ?? ''
  let response: Response
  try {
    response = await fetch(apiUrl(path), {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    })
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error
    throw new ApiError(0, 'network', 'Ferry could not be reached: check your connection and try again.')
  }
  if (response.status === 204) return undefined as T
  const text = await response.text()
  const body: unknown = text ? parseJson(text) : undefined
  if (!response.ok) throw errorFrom(response.status, body)
  return body as T
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function errorFrom(status: number, body: unknown): ApiError {
  const error = (body as { error?: { code?: string; message?: string; fields?: Record<string, string[]> } })?.error
  if (error?.message) return new ApiError(status, error.code ?? 'error', error.message, error.fields ?? {})
  if (status >= 500) return new ApiError(status, 'server_error', 'Ferry failed to answer this request; try again in a moment.')
  return new ApiError(status, 'error', `The request failed (HTTP ${status}).`)
}

export const get = <T,>(path: string, signal?: AbortSignal) => request<T>(path, { signal })
export const post = <T,>(path: string, body?: unknown) => request<T>(path, { method: 'POST', body })
export const patch = <T,>(path: string, body: unknown) => request<T>(path, { method: 'PATCH', body })
export const del = (path: string) => request<void>(path, { method: 'DELETE' })

/** Every page of a paginated list, in order (for lists a page shows whole, as a version's files). */
export async function getAll<T>(path: string, signal?: AbortSignal): Promise<T[]> {
  const rows: T[] = []
  let next: string | null = path
  while (next) {
    const page: Page<T> = await get<Page<T>>(next, signal)
    rows.push(...page.results)
    next = page.next
  }
  return rows
}

/** A query string from the values that are set, `?` included; '' when none is. */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') search.set(key, String(value))
  }
  const text = search.toString()
  return text ? `?${text}` : ''
}
