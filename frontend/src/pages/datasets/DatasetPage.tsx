import { Link, useParams } from 'react-router-dom'
import type { Page } from '../../api/client'
import { datasetPath, versionsPath, type Dataset, type DatasetVersion } from '../../api/datasets'
import { Command } from '../../components/forms'
import { PageHeader } from '../../components/PageHeader'
import { Empty, ErrorMessage, Loaded, Loading, NotFound } from '../../components/States'
import { bytes, dateTime } from '../../components/format'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { Pager, usePageParam } from './common'
import './datasets.css'

const PAGE_SIZE = 50 // the server's default page size

export function DatasetPage() {
  const { owner = '', dataset: name = '' } = useParams()
  const dataset = useApi<Dataset>(datasetPath(owner, name))

  if (dataset.error?.status === 404) {
    return (
      <div className="page">
        <h1>Dataset not found</h1>
        <NotFound error={dataset.error} back={paths.datasets()} backLabel="Back to the datasets" />
      </div>
    )
  }
  if (!dataset.data) {
    if (dataset.error) return <ErrorMessage error={dataset.error} retry={dataset.reload} />
    return <Loading what="Loading the dataset" />
  }
  return <DatasetView dataset={dataset.data} />
}

function DatasetView({ dataset }: { dataset: Dataset }) {
  const [page, hrefFor] = usePageParam()
  const versions = useApi<Page<DatasetVersion>>(versionsPath(dataset.owner, dataset.name, page))
  return (
    <div className="page">
      <PageHeader
        breadcrumbs={
          <>
            <Link to={paths.datasets()}>Datasets</Link> / {dataset.owner}
          </>
        }
        title={`${dataset.owner}/${dataset.name}`}
      >
        <span className="badge">{dataset.visibility}</span>
      </PageHeader>
      <div className="grid version-summary">
        <DatasetFacts dataset={dataset} />
        <UsageCard dataset={dataset} />
      </div>
      <h2>Versions</h2>
      <p className="muted">Every version listed here is committed: its files never change.</p>
      <Loaded {...versions} what="Loading versions">
        {(data) => (
          <>
            <VersionTable dataset={dataset} versions={data.results} />
            <Pager data={data} page={page} size={PAGE_SIZE} hrefFor={hrefFor} what="versions" />
          </>
        )}
      </Loaded>
    </div>
  )
}

function DatasetFacts({ dataset }: { dataset: Dataset }) {
  return (
    <section className="card" aria-label="About this dataset">
      {dataset.description ? <p>{dataset.description}</p> : <p className="muted">No description.</p>}
      <dl className="facts">
        <dt>Owner</dt>
        <dd>{dataset.owner}</dd>
        <dt>Visibility</dt>
        <dd>{dataset.visibility}</dd>
        <dt>Versions</dt>
        <dd>{dataset.version_count}</dd>
        <dt>Latest size</dt>
        <dd>{bytes(dataset.latest_size)}</dd>
        <dt>Created</dt>
        <dd>{dateTime(dataset.created_at)}</dd>
        <dt>Updated</dt>
        <dd>{dateTime(dataset.updated_at)}</dd>
      </dl>
    </section>
  )
}

/** How to use the dataset from the CLI: mount a version in a job, or upload a new one. */
function UsageCard({ dataset }: { dataset: Dataset }) {
  const ref = `${dataset.owner}/${dataset.name}`
  const source = `${dataset.owner}/datasets/${dataset.name}/${dataset.latest_version ?? 1}`
  return (
    <section className="card" aria-label="Use it from the CLI">
      <h3>Mount it in a job</h3>
      <Command text={`ferry run --data ${source}:${dataset.name} "python train.py"`} label="Copy the run command" />
      <p className="muted">
        The files appear read-only at <code>/ferry/input/{dataset.name}</code> (and <code>/floyd/input/{dataset.name}</code>).
      </p>
      <h3>Upload a new version</h3>
      <p className="muted">From the folder that holds the files:</p>
      <Command text={`ferry data init ${ref}`} label="Copy the init command" />
      <Command text={'ferry data upload -m "what changed"'} label="Copy the upload command" />
    </section>
  )
}

function VersionTable({ dataset, versions }: { dataset: Dataset; versions: DatasetVersion[] }) {
  if (!versions.length) {
    return <Empty>No versions yet: upload one with the commands above.</Empty>
  }
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th>Version</th>
            <th>Message</th>
            <th className="num">Files</th>
            <th className="num">Size</th>
            <th className="hide-narrow">Created</th>
            <th className="hide-narrow">Created by</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((version) => (
            <tr key={version.number}>
              <td>
                <Link to={paths.version(dataset.owner, dataset.name, version.number)}>v{version.number}</Link>
              </td>
              <td>{version.message || <span className="muted">—</span>}</td>
              <td className="num">{version.file_count.toLocaleString()}</td>
              <td className="num">{bytes(version.size)}</td>
              <td className="hide-narrow">{dateTime(version.created_at)}</td>
              <td className="hide-narrow">{version.author ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
