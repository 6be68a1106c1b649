// A job's log: its bytes over REST (paged by byte offset), and the websocket that pushes what
// is added while the job runs. Offsets count bytes, so the UI keeps its own position in bytes.
import { ApiError, apiUrl } from './client'
import { jobPath } from './jobs'

export interface LogSlice {
  /** The decoded text of whole characters only. */
  text: string
  /** The byte after the last byte `text` holds: where to ask next. */
  next: number
  /** The job has ended and nothing lies beyond `next`. */
  finished: boolean
}

/** How many bytes of `data` end on a UTF-8 character boundary (a cut character waits). */
export function utf8Complete(data: Uint8Array): number {
  for (let back = 1; back <= Math.min(4, data.length); back++) {
    const byte = data[data.length - back]
    if ((byte & 0b1100_0000) !== 0b1000_0000) return charLength(byte) > back ? data.length - back : data.length
  }
  return data.length
}

function charLength(lead: number): number {
  if (lead >= 0b1111_0000) return 4
  if (lead >= 0b1110_0000) return 3
  return lead >= 0b1100_0000 ? 2 : 1
}

const decoder = new TextDecoder('utf-8')

/** One answer of the logs endpoint from byte `offset`. */
export async function readLog(
  owner: string,
  project: string,
  number: number | string,
  offset: number,
  signal?: AbortSignal,
): Promise<LogSlice> {
  const response = await fetch(apiUrl(`${jobPath(owner, project, number)}/logs?offset=${offset}`), {
    credentials: 'same-origin',
    signal,
  })
  if (!response.ok) throw await logError(response)
  const data = new Uint8Array(await response.arrayBuffer())
  const finished = response.headers.get('X-Ferry-Log-Finished') === 'true'
  const next = Number(response.headers.get('X-Ferry-Log-Offset') ?? offset + data.length)
  // A finished log has no more bytes to come, so a cut character at its end is decoded as is.
  const whole = finished ? data.length : utf8Complete(data)
  return { text: decoder.decode(data.subarray(0, whole)), next: next - (data.length - whole), finished }
}

async function logError(response: Response): Promise<ApiError> {
  const body = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined
  const message = body?.error?.message ?? `The log could not be read (HTTP ${response.status}).`
  return new ApiError(response.status, body?.error?.code ?? 'error', message)
}

/** Messages of /ws/jobs/<id>/ (see jobs/consumers.py). */
export interface SocketLog {
  event: 'log'
  offset: number
  end: number
  text: string
}
export interface SocketStatus {
  event: 'status'
  job: string
  number: number
  status: string
  previous: string
  reason: string
  exit_code: number | null
}
export interface SocketEnd {
  event: 'end'
  status: string
}
export type SocketMessage = SocketLog | SocketStatus | SocketEnd

/** Close codes after which reconnecting cannot help. */
export const SOCKET_REFUSALS: Record<number, string> = {
  4400: 'The live log refused the position asked for.',
  4401: 'Sign in again to follow the log live.',
  4403: 'You may no longer see this job.',
  4404: 'The live log could not find this job.',
}

export function jobSocketUrl(jobId: number, offset: number): string {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
  return `${scheme}://${window.location.host}/ws/jobs/${jobId}/?offset=${offset}`
}

/**
 * The part of a log message not yet seen when the view holds bytes up to `have`: nothing for
 * a repeat, the tail for an overlap (a reconnect may resend what arrived just before a drop).
 */
export function unseenText(message: SocketLog, have: number): string {
  if (message.end <= have) return ''
  if (message.offset >= have) return message.text
  const bytes = new TextEncoder().encode(message.text)
  return decoder.decode(bytes.subarray(have - message.offset))
}
