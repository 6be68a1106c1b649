// A job's log as the logs tab shows it: the backlog over REST, then live lines over the job's
// websocket, resumed from the last byte held after a drop so that no line is lost or doubled.
import { useCallback, useEffect, useRef, useState } from 'react'
import { ApiError } from '../../api/client'
import type { Job } from '../../api/jobs'
import {
  jobSocketUrl,
  readLog,
  SOCKET_REFUSALS,
  unseenText,
  type SocketMessage,
  type SocketStatus,
} from '../../api/logs'

/** Waits before reconnecting a dropped socket: quick at first, then gentler. */
export const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000, 10000]

export type LiveState = 'loading' | 'connecting' | 'live' | 'reconnecting' | 'ended' | 'refused'

/** The log's lines, append-only: a render reads `lines[0..count)` and the unfinished `partial`. */
export class LogBuffer {
  readonly lines: string[] = []
  partial = ''
  /** Text that arrived while paused, not yet shown. */
  held = ''
  heldLines = 0
  /** Bumped by `clear`: a view that memoises by line numbers must also key on this. */
  generation = 0

  clear(): void {
    this.lines.length = 0
    this.partial = ''
    this.held = ''
    this.heldLines = 0
    this.generation += 1
  }

  append(text: string): void {
    const parts = (this.partial + text).split('\n')
    this.partial = parts.pop() ?? ''
    for (const line of parts) this.lines.push(lastRewrite(line))
  }

  hold(text: string): void {
    this.held += text
    this.heldLines += countNewlines(text)
  }

  release(): void {
    this.append(this.held)
    this.held = ''
    this.heldLines = 0
  }
}

/**
 * What a terminal would show of a line that rewrites itself with carriage returns (progress
 * bars): the text after the last one that something follows.
 */
export function lastRewrite(line: string): string {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line
  return text.slice(text.lastIndexOf('\r') + 1)
}

function countNewlines(text: string): number {
  let count = 0
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++
  return count
}

export interface JobLog {
  buffer: LogBuffer
  /** Changes whenever the buffer does: what memoised views key on. */
  version: number
  live: LiveState
  error: ApiError | undefined
  notice: string
  retry(): void
}

interface Options {
  paused: boolean
  onStatus(message: SocketStatus): void
}

/** Schedules one render for any number of appends in the same frame: a busy log stays smooth. */
function useFrameTick(): [number, () => void] {
  const [version, setVersion] = useState(0)
  const pending = useRef(false)
  const tick = useCallback(() => {
    if (pending.current) return
    pending.current = true
    const run = () => {
      pending.current = false
      setVersion((v) => v + 1)
    }
    if (typeof requestAnimationFrame === 'function') requestAnimationFrame(run)
    else setTimeout(run, 16)
  }, [])
  return [version, tick]
}

export function useJobLog(owner: string, project: string, job: Job, { paused, onStatus }: Options): JobLog {
  const [buffer] = useState(() => new LogBuffer())
  const [version, tick] = useFrameTick()
  const [live, setLive] = useState<LiveState>('loading')
  const [error, setError] = useState<ApiError>()
  const [notice, setNotice] = useState('')
  const [attempt, setAttempt] = useState(0)
  const pausedRef = useRef(paused)
  const onStatusRef = useRef(onStatus)
  useEffect(() => {
    onStatusRef.current = onStatus
  }, [onStatus])

  useEffect(() => {
    pausedRef.current = paused
    if (!paused && buffer.held) {
      buffer.release()
      tick()
    }
  }, [paused, buffer, tick])

  useEffect(() => {
    // Each (re)start reads the whole log again, so what was shown goes.
    buffer.clear()
    tick()
    const add = (text: string) => {
      if (!text) return
      if (pausedRef.current) buffer.hold(text)
      else buffer.append(text)
      tick()
    }
    const stream = new LogStream(job.id, add, {
      status: (message) => onStatusRef.current(message),
      state: setLive,
      refused: setNotice,
    })
    const controller = new AbortController()
    readBacklog(owner, project, job.number, add, controller.signal).then(
      ({ next, finished }) => {
        if (finished) setLive('ended')
        else stream.open(next)
      },
      (reason: unknown) => {
        if (controller.signal.aborted) return
        setError(reason instanceof ApiError ? reason : new ApiError(0, 'error', String(reason)))
        setLive('ended')
      },
    )
    return () => {
      controller.abort()
      stream.close()
    }
  }, [owner, project, job.id, job.number, buffer, tick, attempt])

  const retry = useCallback(() => {
    setError(undefined)
    setNotice('')
    setLive('loading')
    setAttempt((n) => n + 1)
  }, [])
  return { buffer, version, live, error, notice, retry }
}

/** Reads the log over REST from its start until no more bytes come. */
async function readBacklog(
  owner: string,
  project: string,
  number: number,
  add: (text: string) => void,
  signal: AbortSignal,
): Promise<{ next: number; finished: boolean }> {
  let offset = 0
  for (;;) {
    const slice = await readLog(owner, project, number, offset, signal)
    add(slice.text)
    if (slice.next <= offset) return { next: offset, finished: slice.finished }
    offset = slice.next
    if (slice.finished) return { next: offset, finished: true }
  }
}

interface StreamEvents {
  status(message: SocketStatus): void
  state(state: LiveState): void
  refused(notice: string): void
}

/** One job's websocket, reopened from the last byte held until the server says the log ended. */
class LogStream {
  private socket: WebSocket | null = null
  private offset = 0
  private failures = 0
  private timer: number | undefined
  private closed = false
  private ended = false
  private readonly jobId: number
  private readonly add: (text: string) => void
  private readonly events: StreamEvents

  constructor(jobId: number, add: (text: string) => void, events: StreamEvents) {
    this.jobId = jobId
    this.add = add
    this.events = events
  }

  open(offset: number): void {
    this.offset = offset
    this.connect()
  }

  close(): void {
    this.closed = true
    window.clearTimeout(this.timer)
    this.socket?.close()
    this.socket = null
  }

  private connect(): void {
    if (this.closed) return
    this.events.state(this.failures ? 'reconnecting' : 'connecting')
    const socket = new WebSocket(jobSocketUrl(this.jobId, this.offset))
    this.socket = socket
    // A socket given up on may still deliver what it had buffered: only the current one counts.
    socket.onopen = () => socket === this.socket && this.events.state('live')
    socket.onmessage = (event: MessageEvent) => socket === this.socket && this.receive(event.data)
    socket.onclose = (event: CloseEvent) => this.dropped(socket, event.code)
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return
    let message: SocketMessage
    try {
      message = JSON.parse(data) as SocketMessage
    } catch {
      return
    }
    this.failures = 0
    if (message.event === 'log') {
      // Bytes are missing before this message: ask again from the last one held.
      if (message.offset > this.offset) return this.resync()
      this.add(unseenText(message, this.offset))
      this.offset = Math.max(this.offset, message.end)
    } else if (message.event === 'status') {
      this.events.status(message)
    } else if (message.event === 'end') {
      this.ended = true
      this.events.state('ended')
    }
  }

  private resync(): void {
    const stale = this.socket
    this.socket = null
    stale?.close()
    this.connect()
  }

  private dropped(socket: WebSocket, code: number): void {
    if (this.closed || socket !== this.socket) return
    this.socket = null
    if (this.ended) return
    const refusal = SOCKET_REFUSALS[code]
    if (refusal) {
      this.events.refused(refusal)
      this.events.state('refused')
      return
    }
    const delay = RECONNECT_DELAYS_MS[Math.min(this.failures, RECONNECT_DELAYS_MS.length - 1)]
    this.failures += 1
    this.events.state('reconnecting')
    this.timer = window.setTimeout(() => this.connect(), delay)
  }
}
