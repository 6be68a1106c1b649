import { act, fireEvent, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Job } from '../../api/jobs'
import { fakeApi, page } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'
import { aJob, FakeSocket, fakeLogs, installFakeSocket, JOB_API, logMessage, type FakeLog } from './jobTesting'

vi.mock('uplot', () => ({ default: class {} }))

const running = aJob({ status: 'running', finished_at: null, exit_code: null, output: null })

function showLogs(job: Job, log: FakeLog, pageBytes?: number) {
  fakeApi({ '/api/v1/user': alice, [JOB_API]: job, [`${JOB_API}/events`]: page([]) })
  const logs = fakeLogs(log, pageBytes)
  renderApp('/alice/projects/mnist/7?tab=logs')
  return logs
}

const logText = () => screen.getByTestId('log-lines').textContent ?? ''

/** The socket the page opened, once it has; opened as the server would. */
async function socket(count = 1): Promise<FakeSocket> {
  await waitFor(() => expect(FakeSocket.sockets).toHaveLength(count))
  const found = FakeSocket.last()
  act(() => found.open())
  return found
}

function send(target: FakeSocket, message: unknown) {
  act(() => target.push(message))
}

beforeEach(() => installFakeSocket())
afterEach(() => vi.unstubAllGlobals())

describe('the logs tab', () => {
  it('reads a finished job’s log over REST, page after page, and opens no socket', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => `step ${i} é`).join('\n') + '\n'
    const { asked } = showLogs(aJob(), { text: lines, finished: true }, 64)

    await waitFor(() => expect(logText()).toContain('step 49 é'))
    expect(logText()).toContain('step 0 é\nstep 1 é\n')
    expect(logText()).not.toContain('\uFFFD') // characters cut between pages are joined again
    expect(asked.length).toBeGreaterThan(5)
    expect(FakeSocket.sockets).toHaveLength(0)
    expect(screen.getByRole('tab', { name: 'Logs' })).toHaveAttribute('aria-selected', 'true')
  })

  it('shows the backlog, then appends live lines from where the backlog ended', async () => {
    showLogs(running, { text: 'epoch 1\nepoch 2\n', finished: false })

    await waitFor(() => expect(logText()).toContain('epoch 2'))
    const live = await socket()
    expect(live.url).toMatch(/\/ws\/jobs\/41\/\?offset=16$/)
    send(live, { event: 'status', job: 'alice/mnist/7', number: 7, status: 'running', previous: '', reason: '', exit_code: null })
    expect(await screen.findByText('Live')).toBeInTheDocument()

    send(live, logMessage(16, 'epoch 3\nepo'))
    send(live, logMessage(27, 'ch 4\n'))
    await waitFor(() => expect(logText()).toBe('epoch 1\nepoch 2\nepoch 3\nepoch 4\n'))
    // A progress bar rewrites its line: only its latest state shows.
    send(live, logMessage(32, ' 10%\r 50%\r'))
    await waitFor(() => expect(logText()).toBe('epoch 1\nepoch 2\nepoch 3\nepoch 4\n 50%'))
    send(live, logMessage(42, '100%\r\n'))
    await waitFor(() => expect(logText()).toBe('epoch 1\nepoch 2\nepoch 3\nepoch 4\n100%\n'))
  })

  it('takes the job’s new status from the socket', async () => {
    let current = running
    fakeApi({ '/api/v1/user': alice, [JOB_API]: () => current, [`${JOB_API}/events`]: page([]) })
    fakeLogs({ text: '', finished: false })
    renderApp('/alice/projects/mnist/7?tab=logs')
    const live = await socket()
    send(live, logMessage(0, 'done\n'))
    current = aJob({ status: 'failed', status_reason: 'exit 3', exit_code: 3 })
    send(live, { event: 'status', job: 'alice/mnist/7', number: 7, status: 'failed', previous: 'running', reason: 'exit 3', exit_code: 3 })
    send(live, { event: 'end', status: 'failed' })
    act(() => live.drop(1000))

    expect(await screen.findByText('failed')).toBeInTheDocument()
    expect(screen.getByText('exit 3')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Stop' })).not.toBeInTheDocument()
    await new Promise((resolve) => setTimeout(resolve, 700))
    expect(FakeSocket.sockets).toHaveLength(1) // the log ended: no reconnect
  })

  it('holds new lines while paused, counting them, and shows them on resume', async () => {
    showLogs(running, { text: 'one\n', finished: false })
    const live = await socket()
    await waitFor(() => expect(logText()).toBe('one\n'))

    await userEvent.click(screen.getByRole('button', { name: 'Pause' }))
    send(live, logMessage(4, 'two\nthree\n'))
    expect(await screen.findByText('2 new lines wait: resume to show them.')).toBeInTheDocument()
    expect(logText()).toBe('one\n')

    await userEvent.click(screen.getByRole('button', { name: 'Resume' }))
    await waitFor(() => expect(logText()).toBe('one\ntwo\nthree\n'))
    expect(screen.queryByText(/new lines? wait/)).not.toBeInTheDocument()
  })

  it('filters the lines by a search, marks the matches and counts them', async () => {
    showLogs(aJob(), { text: 'loss 0.9\nacc 0.5\nLOSS 0.3\nsaving\n', finished: true })
    await waitFor(() => expect(logText()).toContain('saving'))

    await userEvent.type(screen.getByRole('searchbox', { name: 'Search the log' }), 'loss')
    expect(screen.getByText('2 matching lines')).toBeInTheDocument()
    expect(logText()).toContain('loss 0.9')
    expect(logText()).toContain('LOSS 0.3')
    expect(logText()).not.toContain('acc 0.5')
    expect([...screen.getByTestId('log-lines').querySelectorAll('mark')].map((mark) => mark.textContent)).toEqual([
      'loss',
      'LOSS',
    ])

    await userEvent.clear(screen.getByRole('searchbox', { name: 'Search the log' }))
    expect(logText()).toContain('acc 0.5')
  })

  it('follows the end until the reader scrolls up, and jumps back on Follow', async () => {
    showLogs(running, { text: 'a\nb\n', finished: false })
    const live = await socket()
    await waitFor(() => expect(logText()).toBe('a\nb\n'))
    const view = screen.getByTestId('log-lines')
    let height = 1000
    Object.defineProperty(view, 'scrollHeight', { configurable: true, get: () => height })
    Object.defineProperty(view, 'clientHeight', { configurable: true, value: 200 })
    Object.defineProperty(view, 'scrollTop', { configurable: true, writable: true, value: 0 })

    height = 1100
    send(live, logMessage(4, 'c\n'))
    await waitFor(() => expect(view.scrollTop).toBe(1100))

    view.scrollTop = 300
    fireEvent.scroll(view)
    const follow = await screen.findByRole('button', { name: 'Follow' })
    height = 1200
    send(live, logMessage(6, 'd\n'))
    await waitFor(() => expect(logText()).toContain('d\n'))
    expect(view.scrollTop).toBe(300)

    await userEvent.click(follow)
    expect(view.scrollTop).toBe(1200)
    expect(screen.queryByRole('button', { name: 'Follow' })).not.toBeInTheDocument()
  })

  it('reconnects after a drop from the last byte held, without doubling a line', async () => {
    showLogs(running, { text: 'first\n', finished: false })
    const one = await socket()
    send(one, logMessage(6, 'second\n'))
    await waitFor(() => expect(logText()).toBe('first\nsecond\n'))

    act(() => one.drop(1006))
    expect(await screen.findByText('Connection lost, reconnecting…')).toBeInTheDocument()
    const two = await socket(2)
    expect(two.url).toMatch(/\?offset=13$/)
    // A server may resend bytes the client already had: only the unseen part is added.
    send(two, logMessage(6, 'second\nthird\n'))
    send(two, logMessage(13, 'third\n'))
    send(two, logMessage(19, 'fourth\n'))
    await waitFor(() => expect(logText()).toBe('first\nsecond\nthird\nfourth\n'))
  })

  it('asks again from the last byte held when a message skips ahead', async () => {
    showLogs(running, { text: 'a\n', finished: false })
    const one = await socket()
    send(one, logMessage(5, 'c\n'))
    const two = await socket(2)
    expect(two.url).toMatch(/\?offset=2$/)
    send(two, logMessage(2, 'b\nc\n'))
    await waitFor(() => expect(logText()).toBe('a\nb\nc\n'))
  })

  it('stops reconnecting when the server refuses the viewer', async () => {
    showLogs(running, { text: '', finished: false })
    const one = await socket()
    act(() => one.drop(4403))
    expect(await screen.findByText('You may no longer see this job.')).toBeInTheDocument()
    await new Promise((resolve) => setTimeout(resolve, 700))
    expect(FakeSocket.sockets).toHaveLength(1)
  })

  it('renders a log of 100,000 lines in blocks, quickly', async () => {
    const text = Array.from({ length: 100_000 }, (_, i) => `line ${i}`).join('\n') + '\n'
    showLogs(aJob(), { text, finished: true })
    await waitFor(() => expect(logText()).toContain('line 99999\n'), { timeout: 5000 })
    expect(screen.getByTestId('log-lines').querySelectorAll('pre').length).toBe(200)
  })
})
