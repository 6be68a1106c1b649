import { useState } from 'react'
import { Link, useParams } from 'react-router-dom'
import {
  addMember,
  canManage,
  changeRole,
  membersPath,
  removeMember,
  ROLES,
  teamPath,
  type Membership,
  type Role,
  type Team,
} from '../../api/accounts'
import { getAll, type ApiError } from '../../api/client'
import { useAuth } from '../../auth/AuthContext'
import { ConfirmButton, Field, FormError, asApiError, useSubmit } from '../../components/forms'
import { PageHeader } from '../../components/PageHeader'
import { ErrorMessage, Loaded, Loading, NotFound } from '../../components/States'
import { dateTime } from '../../components/format'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { SettingsNav } from './SettingsNav'

export function TeamPage() {
  const { team: name = '' } = useParams()
  const team = useApi<Team>(teamPath(name))
  return (
    <div className="page">
      <PageHeader
        breadcrumbs={
          <>
            <Link to={paths.teams()}>Teams</Link> / {name}
          </>
        }
        title={team.data?.display_name || name}
      />
      <SettingsNav />
      <TeamBody team={team.data} error={team.error} reload={team.reload} />
    </div>
  )
}

function TeamBody({ team, error, reload }: { team?: Team; error?: ApiError; reload: () => void }) {
  if (error?.status === 404) {
    return <NotFound error={error} back={paths.teams()} backLabel="Back to your teams" />
  }
  if (!team) return error ? <ErrorMessage error={error} retry={reload} /> : <Loading what="Loading the team" />
  return (
    <>
      <section className="card settings-form" aria-label="About this team">
        {team.description ? <p>{team.description}</p> : <p className="muted">No description.</p>}
        <dl className="facts">
          <dt>Name</dt>
          <dd>{team.name}</dd>
          <dt>Created</dt>
          <dd>{dateTime(team.created_at)}</dd>
        </dl>
      </section>
      <Members team={team.name} />
    </>
  )
}

function Members({ team }: { team: string }) {
  const { user } = useAuth()
  const members = useApi<Membership[]>(membersPath(team), getAll)
  const [actionError, setActionError] = useState<ApiError | null>(null)

  /** Runs a change to the members, then shows the list as the server now has it. */
  async function act(change: () => Promise<unknown>) {
    setActionError(null)
    try {
      await change()
    } catch (caught) {
      setActionError(asApiError(caught))
    }
    members.reload()
  }

  return (
    <section aria-label="Members">
      <h2>Members</h2>
      <Loaded {...members} what="Loading members">
        {(rows) => {
          const myRole = rows.find((row) => row.username === user.username)?.role
          const manager = canManage(myRole)
          return (
            <>
              {!manager && (
                <p className="muted">Only the team's owners and admins can add, change or remove members.</p>
              )}
              {actionError && <ErrorMessage error={actionError} />}
              {manager && <AddMemberForm team={team} onAdded={members.reload} />}
              <MemberTable
                rows={rows}
                me={user.username}
                manager={manager}
                onRole={(username, role) => void act(() => changeRole(team, username, role))}
                onRemove={(username) => void act(() => removeMember(team, username))}
              />
            </>
          )
        }}
      </Loaded>
    </section>
  )
}

function MemberTable({ rows, me, manager, onRole, onRemove }: {
  rows: Membership[]
  me: string
  manager: boolean
  onRole: (username: string, role: Role) => void
  onRemove: (username: string) => void
}) {
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th>Member</th>
            <th>Role</th>
            <th className="hide-narrow">Since</th>
            {manager && <th aria-label="Actions" />}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.username}>
              <td>
                {row.username}
                {row.username === me && <span className="muted"> (you)</span>}
              </td>
              <td>
                {manager ? (
                  <select
                    aria-label={`Role of ${row.username}`}
                    value={row.role}
                    onChange={(event) => onRole(row.username, event.target.value as Role)}
                  >
                    {ROLES.map((role) => (
                      <option key={role} value={role}>
                        {role}
                      </option>
                    ))}
                  </select>
                ) : (
                  <span className="badge">{row.role}</span>
                )}
              </td>
              <td className="hide-narrow">{dateTime(row.created_at)}</td>
              {manager && (
                <td>
                  <ConfirmButton
                    label="Remove"
                    name={`Remove ${row.username}`}
                    question={row.username === me ? 'Leave this team?' : `Remove ${row.username} from the team?`}
                    confirmLabel="Yes, remove"
                    onConfirm={() => onRemove(row.username)}
                  />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

function AddMemberForm({ team, onAdded }: { team: string; onAdded: () => void }) {
  const [username, setUsername] = useState('')
  const [role, setRole] = useState<Role>('member')
  const { error, busy, onSubmit } = useSubmit(async () => {
    await addMember(team, username, role)
    setUsername('')
    onAdded()
  })
  return (
    <form className="card settings-form form-stack" aria-label="Add a member" onSubmit={(event) => void onSubmit(event)}>
      <FormError error={error} shown={['username', 'role']} />
      <div className="form-row">
        <Field label="Username" field="username" error={error}>
          {(props) => <input {...props} required value={username} onChange={(event) => setUsername(event.target.value)} />}
        </Field>
        <Field label="Role" field="role" error={error}>
          {(props) => (
            <select {...props} value={role} onChange={(event) => setRole(event.target.value as Role)}>
              {ROLES.map((choice) => (
                <option key={choice} value={choice}>
                  {choice}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? 'Adding…' : 'Add member'}
        </button>
      </div>
    </form>
  )
}
