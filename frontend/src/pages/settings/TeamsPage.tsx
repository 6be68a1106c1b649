import { useState } from 'react'
import { Link, useNavigate } from 'react-router-dom'
import { createTeam, teamsPath, type Team } from '../../api/accounts'
import type { Page } from '../../api/client'
import { useAuth } from '../../auth/AuthContext'
import { Field, FormError, SubmitOrCancel, useSubmit } from '../../components/forms'
import { NewFormToggle, PageHeader } from '../../components/PageHeader'
import { Empty, Loaded } from '../../components/States'
import { dateTime } from '../../components/format'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { SettingsNav } from './SettingsNav'

export function TeamsPage() {
  const teams = useApi<Page<Team>>(teamsPath())
  const [creating, setCreating] = useState(false)
  return (
    <div className="page">
      <PageHeader title="Settings" actions={<NewFormToggle label="New team" open={creating} onToggle={setCreating} />} />
      <SettingsNav />
      {creating && <NewTeamForm onCancel={() => setCreating(false)} />}
      <h2>Your teams</h2>
      <Loaded {...teams} what="Loading teams">
        {(data) => <TeamTable teams={data.results} />}
      </Loaded>
    </div>
  )
}

function TeamTable({ teams }: { teams: Team[] }) {
  const { user } = useAuth()
  if (!teams.length) return <Empty>You are in no team yet: create one to share projects and datasets.</Empty>
  // The signed-in user's memberships carry the roles; the team list itself does not.
  const roles = new Map(user.teams.map((team) => [team.name, team.role]))
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th>Team</th>
            <th>Your role</th>
            <th className="hide-narrow">Description</th>
            <th className="hide-narrow">Created</th>
          </tr>
        </thead>
        <tbody>
          {teams.map((team) => (
            <tr key={team.id}>
              <td>
                <Link to={paths.team(team.name)}>{team.name}</Link>
                {team.display_name && <div className="muted">{team.display_name}</div>}
              </td>
              <td>
                <span className="badge">{roles.get(team.name) ?? '—'}</span>
              </td>
              <td className="hide-narrow">{team.description || <span className="muted">—</span>}</td>
              <td className="hide-narrow">{dateTime(team.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

function NewTeamForm({ onCancel }: { onCancel: () => void }) {
  const { refresh } = useAuth()
  const navigate = useNavigate()
  const [name, setName] = useState('')
  const [displayName, setDisplayName] = useState('')
  const [description, setDescription] = useState('')
  const { error, busy, onSubmit } = useSubmit(async () => {
    const team = await createTeam({ name, display_name: displayName, description })
    // The user's memberships (and so the role shown for each team) come with the user.
    await refresh()
    navigate(paths.team(team.name))
  })
  return (
    <form className="card settings-form form-stack" aria-label="New team" onSubmit={(event) => void onSubmit(event)}>
      <h2>New team</h2>
      <FormError error={error} shown={['name', 'display_name', 'description']} />
      <div className="form-row">
        <Field label="Name" field="name" error={error} hint="Used in addresses: letters, digits, “.”, “-” and “_”.">
          {(props) => <input {...props} required value={name} placeholder="vision-lab" onChange={(event) => setName(event.target.value)} />}
        </Field>
        <Field label="Display name" field="display_name" error={error}>
          {(props) => <input {...props} value={displayName} onChange={(event) => setDisplayName(event.target.value)} />}
        </Field>
      </div>
      <Field label="Description" field="description" error={error}>
        {(props) => <textarea {...props} rows={2} value={description} onChange={(event) => setDescription(event.target.value)} />}
      </Field>
      <SubmitOrCancel label="Create team" busyLabel="Creating…" busy={busy} onCancel={onCancel} />
    </form>
  )
}
