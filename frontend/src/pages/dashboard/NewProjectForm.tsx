import { useState, type FormEvent } from 'react'
import { useNavigate } from 'react-router-dom'
import { ApiError } from '../../api/client'
import { createProject, type Visibility } from '../../api/projects'
import { ErrorMessage } from '../../components/States'
import { paths } from '../../routes'

/** Creates a project through the API and opens it. `owners`: the user first, then their teams. */
export function NewProjectForm({ owners, onCancel }: { owners: string[]; onCancel: () => void }) {
  const navigate = useNavigate()
  const [name, setName] = useState('')
  const [owner, setOwner] = useState(owners[0])
  const [description, setDescription] = useState('')
  const [visibility, setVisibility] = useState<Visibility>('private')
  const [error, setError] = useState<ApiError | null>(null)
  const [saving, setSaving] = useState(false)

  async function submit(event: FormEvent) {
    event.preventDefault()
    setSaving(true)
    setError(null)
    try {
      // The user's own name is the default owner; only a team is sent.
      const team = owner === owners[0] ? undefined : owner
      const project = await createProject({ name: name.trim(), description, visibility, owner: team })
      navigate(paths.project(project.owner, project.name))
    } catch (reason) {
      setError(reason instanceof ApiError ? reason : new ApiError(0, 'error', String(reason)))
      setSaving(false)
    }
  }

  const fieldError = (field: string) =>
    error?.fields[field]?.map((message) => (
      <span key={message} className="field-error">
        {message}
      </span>
    ))

  return (
    <form className="new-project" onSubmit={(event) => void submit(event)} aria-label="New project">
      {owners.length > 1 && (
        <label>
          Owner
          <select value={owner} onChange={(event) => setOwner(event.target.value)}>
            {owners.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
          {fieldError('owner')}
        </label>
      )}
      <label>
        Project name
        <input value={name} onChange={(event) => setName(event.target.value)} required placeholder="mnist" autoFocus />
        {fieldError('name')}
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
        {fieldError('description')}
      </label>
      {error && (
        <div className="wide">
          <ErrorMessage error={error} />
        </div>
      )}
      <div className="form-actions wide">
        <button type="submit" className="button primary" disabled={saving || !name.trim()}>
          {saving ? 'Creating…' : 'Create project'}
        </button>
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  )
}
