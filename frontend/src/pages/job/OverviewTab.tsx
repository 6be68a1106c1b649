import { useEffect, useRef, type ReactNode } from 'react'
import { Link } from 'react-router-dom'
import { getAll } from '../../api/client'
import { isFinished, jobEventsPath, type Job, type JobEvent, type JobInput } from '../../api/jobs'
import { dateTime, duration, elapsed } from '../../components/format'
import { Loaded } from '../../components/States'
import { StatusBadge } from '../../components/StatusBadge'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { useNow } from './useNow'

interface Props {
  owner: string
  project: string
  job: Job
}

export function OverviewTab({ owner, project, job }: Props) {
  return (
    <div className="job-overview">
      <section className="card">
        <h2>Run</h2>
        <dl className="facts">
          <Fact label="Command">
            <code className="job-command">{job.command || '—'}</code>
          </Fact>
          <Fact label="Environment">{job.environment}</Fact>
          <Fact label="Machine">{job.machine}</Fact>
          <Fact label="Host">{job.host ? `${job.host.name} (${job.host.executor})` : '—'}</Fact>
          <Fact label="GPUs">{job.host && job.host.gpus.length ? job.host.gpus.join(', ') : 'none'}</Fact>
          <Fact label="Inputs">
            <Inputs inputs={job.inputs} />
          </Fact>
          <Fact label="Params">
            <Params params={job.params} />
          </Fact>
          <Fact label="Created by">{job.created_by ?? '—'}</Fact>
          {job.attempt > 1 && <Fact label="Attempt">{`${job.attempt} of ${job.max_retries + 1}`}</Fact>}
        </dl>
      </section>
      <section className="card">
        <h2>Timing</h2>
        <Timings job={job} />
      </section>
      <section className="card job-events">
        <h2>Events</h2>
        <Events owner={owner} project={project} job={job} />
      </section>
    </div>
  )
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  )
}

function Timings({ job }: { job: Job }) {
  const running = job.started_at !== null && !job.finished_at
  const now = useNow(running)
  return (
    <dl className="facts">
      <Fact label="Created">{dateTime(job.created_at)}</Fact>
      <Fact label="Started">{dateTime(job.started_at)}</Fact>
      <Fact label="Finished">{dateTime(job.finished_at)}</Fact>
      <Fact label="Duration">
        <span data-testid="job-duration">{duration(elapsed(job.started_at, job.finished_at, now))}</span>
      </Fact>
      <Fact label="Exit code">{job.exit_code ?? (isFinished(job.status) ? '—' : 'not yet')}</Fact>
    </dl>
  )
}

/** Where an input came from, as a link: a dataset version, or another job's output. */
export function inputLink(input: JobInput): string | null {
  const parts = input.source.split('/')
  if (parts.length === 4 && parts[3] === 'output') return paths.job(parts[0], parts[1], parts[2], 'output')
  if (parts.length === 3) return paths.version(parts[0], parts[1], parts[2])
  return null
}

function Inputs({ inputs }: { inputs: JobInput[] }) {
  if (inputs.length === 0) return <>none</>
  return (
    <ul className="plain-list">
      {inputs.map((input) => {
        const link = inputLink(input)
        return (
          <li key={input.name}>
            <code>/ferry/input/{input.name}</code> ← {link ? <Link to={link}>{input.source}</Link> : input.source}
          </li>
        )
      })}
    </ul>
  )
}

function Params({ params }: { params: Record<string, unknown> }) {
  const entries = Object.entries(params)
  if (entries.length === 0) return <>none</>
  return (
    <dl className="facts job-params">
      {entries.map(([key, value]) => (
        <Fact key={key} label={key}>
          <code>{typeof value === 'string' ? value : JSON.stringify(value)}</code>
        </Fact>
      ))}
    </dl>
  )
}

function Events({ owner, project, job }: Props) {
  const events = useApi<JobEvent[]>(jobEventsPath(owner, project, job.number), getAll)
  const { reload } = events
  const seen = useRef(job.status)
  useEffect(() => {
    // Each change of status adds an event: fetch the timeline again when the job moves on.
    if (seen.current === job.status) return
    seen.current = job.status
    reload()
  }, [job.status, reload])
  return (
    <Loaded {...events} what="Loading events">
      {(rows) =>
        rows.length === 0 ? (
          <p className="muted">No events yet.</p>
        ) : (
          <ol className="timeline">
            {rows.map((event, index) => (
              <li key={index}>
                <time dateTime={event.created_at}>{dateTime(event.created_at)}</time>
                <span>
                  {event.from_status && (
                    <>
                      <StatusBadge status={event.from_status} /> →{' '}
                    </>
                  )}
                  <StatusBadge status={event.to_status} />
                </span>
                {event.reason && <span className="muted">{event.reason}</span>}
              </li>
            ))}
          </ol>
        )
      }
    </Loaded>
  )
}
