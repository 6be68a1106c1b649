import { useState } from 'react'
import { useNavigate } from 'react-router-dom'
import { createProject, type Visibility } from '../../api/projects'
import { FieldError, SubmitOrCancel, useSubmit } from '../../components/forms'
import { ErrorMessage } from '../../components/States'
import { paths } from '../../routes'

/** Creates a project through the API and opens it. `owners`: the user first, then their teams. */
export function NewProjectForm({ owners, onCancel }: { owners: string[]; onCancel: () => void }) {
  const navigate = useNavigate()
  const [name, setName] = useState('')
  const [owner, setOwner] = useState(owners[0])
  const [description, setDescription] = useState('')
  const [visibility, setVisibility] = useState<Visibility>('private')
  const { error, busy, onSubmit } = useSubmit(async () => {
    // The user's own name is the default owner; only a team is sent.
    const team = owner === owners[0] ? undefined : owner
    const project = await createProject({ name: name.trim(), description, visibility, owner: team })
    navigate(paths.project(project.owner, project.name))
  })

  return (
    <form className="new-project" onSubmit={(event) => void onSubmit(event)} aria-label="New project">
      {owners.length > 1 && (
        <label>
          Owner
          <select value={owner} onChange={(event) => setOwner(event.target.value)}>
            {owners.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
          <FieldError error={error} field="owner" />
        </label>
      )}
      <label>
        Project name
        <input value={name} onChange={(event) => setName(event.target.value)} required placeholder="mnist" autoFocus />
        <FieldError error={error} field="name" />
      </label>
      <label>
        Visibility
        <select value={visibility} onChange={(event) => setVisibility(event.target.value as Visibility)}>
          <option value="private">Private: you and those you add</option>
          <option value="public">Public: anyone may view</option>
        </select>
      </label>
      <label className="wide">
        Description
        <input value={description} onChange={(event) => setDescription(event.target.value)} placeholder="Optional" />
        <FieldError error={error} field="description" />
      </label>
      {error && (
        <div className="wide">
          <ErrorMessage error={error} />
        </div>
      )}
      <SubmitOrCancel
        className="form-actions wide"
        label="Create project"
        busyLabel="Creating…"
        busy={busy}
        disabled={!name.trim()}
        onCancel={onCancel}
      />
    </form>
  )
}
