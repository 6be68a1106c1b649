// A stand-in for the server in component tests: `fetch` answers from a table of routes and
// records every call, so a test can say what the page asked for and what it sent.
import { vi } from 'vitest'

export interface Call {
  method: string
  url: string
  body: unknown
  headers: Record<string, string>
}

export class Reply {
  readonly status: number
  readonly body: unknown
  constructor(status: number, body: unknown) {
    this.status = status
    this.body = body
  }
}

/** An answer other than 200 with a JSON body. */
export const reply = (status: number, body?: unknown) => new Reply(status, body)

/** The API's error body, as the server sends it. */
export const apiError = (status: number, message: string, fields: Record<string, string[]> = {}) =>
  reply(status, { error: { code: 'error', message, fields } })

/** A page of a paginated list. */
export const page = <T,>(results: T[]) => ({ count: results.length, next: null, previous: null, results })

export type Route = unknown | ((call: Call) => unknown)

/**
 * Replaces `fetch`. Keys are "METHOD /path?query" or "/path?query" (GET); the query must match
 * whole when the key has one, and is ignored when it has none. A value is the JSON body of a
 * 200, a Reply, or a function of the call giving either. Unknown routes answer 404.
 */
export function fakeApi(routes: Record<string, Route>) {
  const calls: Call[] = []
  const fetchMock = vi.fn<(input: string, init?: RequestInit) => Promise<Response>>(async (input, init) => {
    const method = (init?.method ?? 'GET').toUpperCase()
    const text = typeof init?.body === 'string' ? init.body : undefined
    const call: Call = {
      method,
      url: input,
      body: text === undefined ? undefined : JSON.parse(text),
      headers: (init?.headers ?? {}) as Record<string, string>,
    }
    calls.push(call)
    const route = find(routes, method, input)
    if (route === undefined) return respond(apiError(404, `no fake route for ${method} ${input}`))
    return respond(typeof route === 'function' ? (route as (call: Call) => unknown)(call) : route)
  })
  vi.stubGlobal('fetch', fetchMock)
  return { calls, fetch: fetchMock }
}

function find(routes: Record<string, Route>, method: string, url: string): Route | undefined {
  const path = url.split('?')[0]
  for (const [key, route] of Object.entries(routes)) {
    const [keyMethod, keyUrl] = key.includes(' ') ? key.split(' ', 2) : ['GET', key]
    if (keyMethod !== method) continue
    if (keyUrl === url || (!keyUrl.includes('?') && keyUrl === path)) return route
  }
  return undefined
}

function respond(value: unknown): Response {
  const { status, body } = value instanceof Reply ? value : { status: 200, body: value }
  if (status === 204 || body === undefined) return new Response(null, { status })
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}
