import { useState } from 'react'
import { useNavigate } from 'react-router-dom'
import { getAll } from '../../api/client'
import {
  environmentsPath,
  isFinished,
  machineTypesPath,
  restartJob,
  stopJob,
  type Environment,
  type Job,
  type MachineType,
} from '../../api/jobs'
import { FieldError, SubmitOrCancel, useSubmit } from '../../components/forms'
import { ErrorMessage } from '../../components/States'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'

interface Props {
  owner: string
  project: string
  job: Job
  onChange(job: Job): void
}

type Open = 'none' | 'stop' | 'restart'

/** Stop (asked for twice) and Restart (with a form), with their errors shown in place. */
export function JobActions({ owner, project, job, onChange }: Props) {
  const [open, setOpen] = useState<Open>('none')
  const canStop = !isFinished(job.status) && job.status !== 'stopping'
  return (
    <div className="job-actions-area">
      <div className="actions">
        {canStop && (
          <button type="button" className="button danger" onClick={() => setOpen('stop')} disabled={open === 'stop'}>
            Stop
          </button>
        )}
        <button type="button" className="button" onClick={() => setOpen('restart')} disabled={open === 'restart'}>
          Restart
        </button>
      </div>
      {open === 'stop' && canStop && (
        <StopConfirm owner={owner} project={project} job={job} onChange={onChange} onClose={() => setOpen('none')} />
      )}
      {open === 'restart' && <RestartForm owner={owner} project={project} job={job} onClose={() => setOpen('none')} />}
    </div>
  )
}

function StopConfirm({ owner, project, job, onChange, onClose }: Props & { onClose(): void }) {
  const { error, busy, onSubmit: stop } = useSubmit(async () => {
    onChange(await stopJob(owner, project, job.number))
    onClose()
  })
  return (
    <div className="card job-confirm" role="group" aria-label="Stop the job">
      <p>Stop job #{job.number}? Its process is ended; what it wrote to /ferry/output so far is kept.</p>
      {error && <ErrorMessage error={error} />}
      <div className="toolbar">
        <button type="button" className="button danger" onClick={() => void stop()} disabled={busy}>
          {busy ? 'Stopping…' : 'Stop job'}
        </button>
        <button type="button" className="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </div>
  )
}

interface RestartProps {
  owner: string
  project: string
  job: Job
  onClose(): void
}

function RestartForm({ owner, project, job, onClose }: RestartProps) {
  const navigate = useNavigate()
  const machines = useApi<MachineType[]>(machineTypesPath, getAll)
  const environments = useApi<Environment[]>(environmentsPath, getAll)
  const [command, setCommand] = useState(job.command)
  const [machine, setMachine] = useState(job.machine)
  const [environment, setEnvironment] = useState(job.environment)
  const { error, busy, onSubmit } = useSubmit(async () => {
    // Only what was changed is sent: the rest is the old job's, as the server copies it.
    const changes: Record<string, string> = {}
    if (command !== job.command) changes.command = command
    if (machine !== job.machine) changes.machine = machine
    if (environment !== job.environment) changes.environment = environment
    const restarted = await restartJob(owner, project, job.number, changes)
    navigate(paths.job(owner, project, restarted.number))
  })
  const listError = machines.error ?? environments.error

  return (
    <form className="card job-restart" onSubmit={(event) => void onSubmit(event)} aria-label="Restart the job">
      <h2>Restart #{job.number}</h2>
      {listError && <ErrorMessage error={listError} />}
      <label>
        Command
        <textarea rows={2} value={command} onChange={(event) => setCommand(event.target.value)} />
        <FieldError error={error} field="command" />
      </label>
      <div className="job-restart-row">
        <label>
          Machine
          <select value={machine} onChange={(event) => setMachine(event.target.value)}>
            {withCurrent(machines.data?.map((m) => m.name), job.machine).map((name) => (
              <option key={name} value={name}>
                {machineLabel(name, machines.data)}
              </option>
            ))}
          </select>
          <FieldError error={error} field="machine" />
        </label>
        <label>
          Environment
          <select value={environment} onChange={(event) => setEnvironment(event.target.value)}>
            {withCurrent(environments.data?.map((e) => e.name), job.environment).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
          <FieldError error={error} field="environment" />
        </label>
      </div>
      {error && <ErrorMessage error={error} />}
      <SubmitOrCancel className="toolbar" label="Restart job" busyLabel="Restarting…" busy={busy} onCancel={onClose} />
    </form>
  )
}

/** The choices, with the job's own value among them even before (or without) the list. */
function withCurrent(names: string[] | undefined, current: string): string[] {
  const all = names ?? []
  return all.includes(current) ? all : [current, ...all]
}

function machineLabel(name: string, machines: MachineType[] | undefined): string {
  const found = machines?.find((m) => m.name === name)
  if (!found) return name
  const gpus = found.gpus ? `, ${found.gpus} GPU${found.gpus > 1 ? 's' : ''}${found.gpu_model ? ` (${found.gpu_model})` : ''}` : ''
  return `${name} — ${found.cpus} CPU, ${Math.round(found.memory_mb / 1024)} GB${gpus}`
}
