import { useState } from 'react'
import { isFinished, type Job } from '../../api/jobs'
import type { SocketStatus } from '../../api/logs'
import { ErrorMessage } from '../../components/States'
import { LogView, useMatches } from './LogView'
import { useJobLog, type LiveState } from './useJobLog'

const LIVE_LABELS: Record<LiveState, string> = {
  loading: 'Loading the log…',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Connection lost, reconnecting…',
  ended: '',
  refused: '',
}

interface Props {
  owner: string
  project: string
  job: Job
  onStatus(message: SocketStatus): void
}

export function LogsTab({ owner, project, job, onStatus }: Props) {
  const [paused, setPaused] = useState(false)
  const [follow, setFollow] = useState(true)
  const [search, setSearch] = useState('')
  const log = useJobLog(owner, project, job, { paused, onStatus })
  const needle = search.trim().toLowerCase()
  const { buffer } = log
  const matches = useMatches(buffer, buffer.lines.length, buffer.partial, needle)
  const empty = buffer.lines.length === 0 && !buffer.partial

  return (
    <section className="logs-tab">
      <div className="toolbar">
        <input
          type="search"
          aria-label="Search the log"
          placeholder="Search the log"
          value={search}
          onChange={(event) => setSearch(event.target.value)}
        />
        {matches && (
          <span className="muted" role="status">
            {matches.length === 1 ? '1 matching line' : `${matches.length} matching lines`}
          </span>
        )}
        <span className="logs-actions">
          <LiveBadge state={log.live} />
          <button type="button" className="button small" aria-pressed={paused} onClick={() => setPaused(!paused)}>
            {paused ? 'Resume' : 'Pause'}
          </button>
          {!follow && (
            <button type="button" className="button small" onClick={() => setFollow(true)}>
              Follow
            </button>
          )}
        </span>
      </div>
      {paused && buffer.heldLines > 0 && (
        <p className="log-waiting" role="status">
          {buffer.heldLines === 1 ? '1 new line waits' : `${buffer.heldLines} new lines wait`}: resume to show them.
        </p>
      )}
      {log.error && <ErrorMessage error={log.error} retry={log.retry} />}
      {log.notice && <ErrorMessage error={log.notice} retry={log.retry} />}
      {empty && log.live !== 'loading' && !log.error ? (
        <p className="log-none" data-testid="log-lines">
          {emptyLogMessage(job)}
        </p>
      ) : (
        <LogView
          buffer={buffer}
          version={log.version}
          needle={needle}
          matches={matches}
          follow={follow}
          onFollowChange={setFollow}
        />
      )}
    </section>
  )
}

function LiveBadge({ state }: { state: LiveState }) {
  const label = LIVE_LABELS[state]
  if (!label) return null
  return <span className={`log-live log-live-${state}`}>{label}</span>
}

function emptyLogMessage(job: Job): string {
  if (isFinished(job.status)) return 'This job logged nothing.'
  if (job.status === 'queued' || job.status === 'scheduled') return 'The job has not started yet: its log appears here as it runs.'
  return 'Waiting for the first line…'
}
