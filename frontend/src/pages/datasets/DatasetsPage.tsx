import { useState } from 'react'
import { Link, useNavigate, useSearchParams } from 'react-router-dom'
import type { Page } from '../../api/client'
import { createDataset, datasetsPath, type Dataset, type Visibility } from '../../api/datasets'
import { useAuth } from '../../auth/AuthContext'
import { Command, Field, FieldError, FormError, SubmitOrCancel, useSubmit } from '../../components/forms'
import { NewFormToggle, PageHeader } from '../../components/PageHeader'
import { Empty, Loaded } from '../../components/States'
import { ago, bytes, dateTime } from '../../components/format'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { Pager, usePageParam } from './common'
import './datasets.css'

const PAGE_SIZE = 50 // the server's default page size

export function DatasetsPage() {
  const [params, setParams] = useSearchParams()
  const search = params.get('search') ?? ''
  const [page, hrefFor] = usePageParam()
  const [creating, setCreating] = useState(false)
  const listing = useApi<Page<Dataset>>(datasetsPath(search, page))

  function setSearch(text: string) {
    // A new filter starts again from its first page; replace, so typing leaves no history trail.
    setParams(text ? { search: text } : {}, { replace: true })
  }

  return (
    <div className="page">
      <PageHeader title="Datasets" actions={<NewFormToggle label="New dataset" open={creating} onToggle={setCreating} />} />
      {creating && <NewDatasetForm onCancel={() => setCreating(false)} />}
      <div className="toolbar">
        <label>
          Filter
          <input
            type="search"
            value={search}
            placeholder="name, owner or description"
            onChange={(event) => setSearch(event.target.value)}
          />
        </label>
      </div>
      <Loaded {...listing} what="Loading datasets">
        {(data) => (
          <>
            <DatasetTable datasets={data.results} search={search} />
            <Pager data={data} page={page} size={PAGE_SIZE} hrefFor={hrefFor} what="datasets" />
          </>
        )}
      </Loaded>
    </div>
  )
}

function DatasetTable({ datasets, search }: { datasets: Dataset[]; search: string }) {
  if (!datasets.length) {
    return (
      <Empty>
        {search
          ? `No dataset you can see matches “${search}”.`
          : 'No datasets yet: create one with “New dataset”, then upload a version with the ferry CLI.'}
      </Empty>
    )
  }
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th>Dataset</th>
            <th className="hide-narrow">Visibility</th>
            <th className="num">Versions</th>
            <th className="num">Latest size</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {datasets.map((dataset) => (
            <DatasetRow key={dataset.id} dataset={dataset} />
          ))}
        </tbody>
      </table>
    </div>
  )
}

function DatasetRow({ dataset }: { dataset: Dataset }) {
  const latest = dataset.latest_version
  return (
    <tr>
      <td>
        <Link className="dataset-name" to={paths.dataset(dataset.owner, dataset.name)}>
          {dataset.owner}/{dataset.name}
        </Link>
        {dataset.description && <div className="dataset-description">{dataset.description}</div>}
      </td>
      <td className="hide-narrow">
        <span className="badge">{dataset.visibility}</span>
      </td>
      <td className="num">
        {dataset.version_count}
        {latest !== null && (
          <>
            {' '}
            (<Link to={paths.version(dataset.owner, dataset.name, latest)}>latest v{latest}</Link>)
          </>
        )}
      </td>
      <td className="num">{bytes(dataset.latest_size)}</td>
      <td title={dateTime(dataset.updated_at ?? dataset.created_at)}>{ago(dataset.updated_at ?? dataset.created_at)}</td>
    </tr>
  )
}

function NewDatasetForm({ onCancel }: { onCancel: () => void }) {
  const { user } = useAuth()
  const navigate = useNavigate()
  const [name, setName] = useState('')
  const [description, setDescription] = useState('')
  const [visibility, setVisibility] = useState<Visibility>('private')
  const [owner, setOwner] = useState(user.username)
  const { error, busy, onSubmit } = useSubmit(async () => {
    const team = owner === user.username ? undefined : owner
    const created = await createDataset({ name, description, visibility, ...(team ? { owner: team } : {}) })
    navigate(paths.dataset(created.owner, created.name))
  })
  const fullName = `${owner}/${name || 'NAME'}`

  return (
    <form className="card new-dataset form-stack" onSubmit={(event) => void onSubmit(event)} aria-label="New dataset">
      <h2>New dataset</h2>
      <FormError error={error} shown={['name', 'description', 'visibility', 'owner']} />
      <div className="form-row">
        {user.teams.length > 0 && (
          <Field label="Owner" field="owner" error={error}>
            {(props) => (
              <select {...props} value={owner} onChange={(event) => setOwner(event.target.value)}>
                <option value={user.username}>{user.username} (you)</option>
                {user.teams.map((team) => (
                  <option key={team.name} value={team.name}>
                    {team.name} (team)
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}
        <Field label="Name" field="name" error={error}>
          {(props) => <input {...props} required value={name} onChange={(event) => setName(event.target.value)} />}
        </Field>
      </div>
      <Field label="Description" field="description" error={error}>
        {(props) => <textarea {...props} rows={2} value={description} onChange={(event) => setDescription(event.target.value)} />}
      </Field>
      <fieldset className="form-row">
        <legend>Visibility</legend>
        <label className="inline">
          <input type="radio" name="visibility" checked={visibility === 'private'} onChange={() => setVisibility('private')} />
          Private: you{owner !== user.username ? ' and the team' : ''} only
        </label>
        <label className="inline">
          <input type="radio" name="visibility" checked={visibility === 'public'} onChange={() => setVisibility('public')} />
          Public: everyone can read it
        </label>
        <FieldError error={error} field="visibility" />
      </fieldset>
      <div className="muted">
        Versions are uploaded from a folder on your machine with the ferry CLI:
        <Command text={`ferry data init ${fullName}`} label="Copy the init command" />
        <Command text={'ferry data upload -m "what changed"'} label="Copy the upload command" />
      </div>
      <SubmitOrCancel label="Create dataset" busyLabel="Creating…" busy={busy} onCancel={onCancel} />
    </form>
  )
}
