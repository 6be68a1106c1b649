// Test helpers of the job page: a job to show, the raw log endpoint (fakeApi answers JSON
// only), and a WebSocket stand-in that a test drives by hand.
import { vi } from 'vitest'
import type { Job } from '../../api/jobs'
import { sampleJob } from '../../test/fixtures'

/** Job alice/mnist #7 with all a job can carry: inputs, params, code, an output and its host. */
export function aJob(changes: Partial<Job> = {}): Job {
  return sampleJob({
    id: 41,
    number: 7,
    name: 'alice/mnist/7',
    command: 'python train.py --epochs 3',
    message: 'first try with dropout',
    environment: 'pytorch-2.5',
    machine: 'gpu',
    code: 'c0de',
    inputs: [
      { name: 'mnist', kind: 'dataset', source: 'alice/mnist-data/3', tree: 'aaa' },
      { name: 'prev', kind: 'output', source: 'alice/mnist/5/output', tree: 'bbb' },
    ],
    params: { lr: 0.01, optimizer: 'adam' },
    output: 'out123',
    output_size: 3072,
    output_at: '2026-11-27T10:05:00Z',
    host: { name: 'gpu-box-1', executor: 'docker', gpus: [0, 2] },
    created_at: '2026-11-27T10:00:00Z',
    started_at: '2026-11-27T10:00:30Z',
    finished_at: '2026-11-27T10:05:00Z',
    ...changes,
  })
}

export const JOB_API = '/api/v1/projects/alice/mnist/jobs/7'

/** What the logs endpoint holds: the text, and whether the job has ended. */
export interface FakeLog {
  text: string
  finished: boolean
}

/**
 * Wraps the fetch that fakeApi installed so that `.../logs?offset=N` answers raw bytes with
 * the offset headers, as the server does; `pageBytes` cuts answers short to test paging.
 */
export function fakeLogs(log: FakeLog, pageBytes = 1 << 20) {
  const inner = globalThis.fetch
  const asked: number[] = []
  const wrapped = vi.fn<(input: string, init?: RequestInit) => Promise<Response>>(async (input, init) => {
    const url = new URL(input, 'http://ferry.test')
    if (!url.pathname.endsWith('/logs')) return inner(input, init)
    const offset = Number(url.searchParams.get('offset') ?? 0)
    asked.push(offset)
    const data = new TextEncoder().encode(log.text)
    const piece = data.subarray(offset, offset + pageBytes)
    const next = offset + piece.length
    return new Response(piece, {
      status: 200,
      headers: {
        'Content-Type': 'application/octet-stream',
        'X-Ferry-Log-Offset': String(next),
        'X-Ferry-Log-Finished': String(log.finished && next >= data.length),
      },
    })
  })
  vi.stubGlobal('fetch', wrapped)
  return { asked }
}

/** A WebSocket the test opens, feeds and drops by hand; every one made is in `sockets`. */
export class FakeSocket {
  static sockets: FakeSocket[] = []
  readonly url: string
  readyState = 0
  onopen: ((event: Event) => void) | null = null
  onmessage: ((event: MessageEvent) => void) | null = null
  onclose: ((event: CloseEvent) => void) | null = null
  onerror: ((event: Event) => void) | null = null

  constructor(url: string) {
    this.url = url
    FakeSocket.sockets.push(this)
  }

  static last(): FakeSocket {
    return FakeSocket.sockets[FakeSocket.sockets.length - 1]
  }

  open(): void {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }

  send(): void {}

  /** The server sends a message. */
  push(message: unknown): void {
    this.onmessage?.(new MessageEvent('message', { data: JSON.stringify(message) }))
  }

  /** The connection drops (or the server closes it with `code`). */
  drop(code = 1006): void {
    this.readyState = 3
    this.onclose?.(new CloseEvent('close', { code }))
  }

  close(): void {
    this.readyState = 3
  }
}

export function installFakeSocket(): void {
  FakeSocket.sockets = []
  vi.stubGlobal('WebSocket', FakeSocket)
}

export const logMessage = (offset: number, text: string) => ({
  event: 'log',
  offset,
  end: offset + new TextEncoder().encode(text).length,
  text,
})
