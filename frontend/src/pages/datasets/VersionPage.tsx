import { Link, useParams, useSearchParams } from 'react-router-dom'
import type { Page } from '../../api/client'
import {
  fileDownloadUrl,
  LISTING_PAGE_SIZE,
  listingPath,
  tarDownloadUrl,
  versionPath,
  type DatasetVersion,
  type Listing,
} from '../../api/datasets'
import { PageHeader } from '../../components/PageHeader'
import { Empty, ErrorMessage, Loaded, Loading, NotFound } from '../../components/States'
import { FileIcon, FolderIcon } from '../../components/Icons'
import { bytes, dateTime } from '../../components/format'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { Pager, usePageParam } from './common'
import './datasets.css'

interface VersionRef {
  owner: string
  dataset: string
  number: string
}

/** The folder `?path=` names, without leading or trailing slashes ('' for the top). */
function useFolder(): string {
  const [params] = useSearchParams()
  return (params.get('path') ?? '').replace(/^\/+|\/+$/g, '')
}

export function VersionPage() {
  const { owner = '', dataset = '', version: number = '' } = useParams()
  const ref: VersionRef = { owner, dataset, number }
  const version = useApi<DatasetVersion>(versionPath(owner, dataset, number))

  if (version.error?.status === 404) {
    return (
      <div className="page">
        <h1>Version not found</h1>
        <NotFound error={version.error} back={paths.dataset(owner, dataset)} backLabel={`Back to ${owner}/${dataset}`} />
      </div>
    )
  }
  if (!version.data) {
    if (version.error) return <ErrorMessage error={version.error} retry={version.reload} />
    return <Loading what="Loading the version" />
  }
  return <VersionView versionRef={ref} version={version.data} />
}

function VersionView({ versionRef, version }: { versionRef: VersionRef; version: DatasetVersion }) {
  const { owner, dataset } = versionRef
  return (
    <div className="page">
      <PageHeader
        breadcrumbs={
          <>
            <Link to={paths.datasets()}>Datasets</Link> / <Link to={paths.dataset(owner, dataset)}>{owner}/{dataset}</Link>
          </>
        }
        title={`${owner}/${dataset} v${version.number}`}
        actions={
          <a className="button" href={tarDownloadUrl(owner, dataset, version.number)} download>
            Download all (.tar)
          </a>
        }
      />
      <section className="card version-summary" aria-label="About this version">
        {version.message ? <p>{version.message}</p> : <p className="muted">No message.</p>}
        <dl className="facts">
          <dt>Files</dt>
          <dd>{version.file_count.toLocaleString()}</dd>
          <dt>Size</dt>
          <dd>{bytes(version.size)}</dd>
          <dt>Created</dt>
          <dd>
            {dateTime(version.created_at)}
            {version.author ? ` by ${version.author}` : ''}
          </dd>
          <dt>Tree</dt>
          <dd>
            <code>{version.tree}</code>
          </dd>
        </dl>
      </section>
      <FileBrowser versionRef={versionRef} number={version.number} />
    </div>
  )
}

/** One folder of the version at a time, a page of rows at a time: a version may hold 100,000 files. */
function FileBrowser({ versionRef, number }: { versionRef: VersionRef; number: number }) {
  const { owner, dataset } = versionRef
  const folder = useFolder()
  const [page, hrefFor] = usePageParam()
  const listing = useApi<Page<Listing>>(listingPath(owner, dataset, number, folder, page))

  return (
    // While another folder loads, the last one stays dimmed rather than blinking out.
    <section aria-label="Files" aria-busy={listing.loading} className={listing.loading ? 'files loading' : 'files'}>
      <PathCrumbs versionRef={versionRef} number={number} folder={folder} />
      {listing.error?.status === 404 ? (
        <NotFound error={listing.error} back={paths.version(owner, dataset, number)} backLabel="Back to the top folder" />
      ) : (
        <Loaded {...listing} what="Loading files">
          {(data) => (
            <>
              <FileTable versionRef={versionRef} number={number} folder={folder} rows={data.results} />
              <Pager data={data} page={page} size={LISTING_PAGE_SIZE} hrefFor={hrefFor} what="entries" />
            </>
          )}
        </Loaded>
      )}
    </section>
  )
}

function PathCrumbs({ versionRef, number, folder }: { versionRef: VersionRef; number: number; folder: string }) {
  const { owner, dataset } = versionRef
  const parts = folder ? folder.split('/') : []
  return (
    <nav className="path-crumbs" aria-label="Folder">
      {parts.length ? <Link to={paths.version(owner, dataset, number)}>v{number}</Link> : <span aria-current="page">v{number}</span>}
      {parts.map((part, index) => {
        const here = parts.slice(0, index + 1).join('/')
        const last = index === parts.length - 1
        return (
          <span key={here}>
            {' / '}
            {last ? <span aria-current="page">{part}</span> : <Link to={paths.version(owner, dataset, number, here)}>{part}</Link>}
          </span>
        )
      })}
    </nav>
  )
}

function parentOf(folder: string): string {
  return folder.includes('/') ? folder.slice(0, folder.lastIndexOf('/')) : ''
}

function FileTable({ versionRef, number, folder, rows }: {
  versionRef: VersionRef
  number: number
  folder: string
  rows: Listing[]
}) {
  const { owner, dataset } = versionRef
  if (!rows.length) return <Empty>This version has no files.</Empty>
  return (
    <div className="table-wrap">
      <table className="table" data-testid="file-list">
        <thead>
          <tr>
            <th>Name</th>
            <th className="num">Size</th>
          </tr>
        </thead>
        <tbody>
          {folder && (
            <tr>
              <td colSpan={2}>
                <span className="file-icon" aria-hidden="true">↰</span>
                <Link to={paths.version(owner, dataset, number, parentOf(folder))}>.. (up a folder)</Link>
              </td>
            </tr>
          )}
          {rows.map((row) => (
            <tr key={row.path}>
              <td className="file-name">
                {row.kind === 'dir' ? (
                  <>
                    <FolderIcon className="file-icon" />
                    <Link to={paths.version(owner, dataset, number, row.path)}>{row.name}/</Link>
                  </>
                ) : (
                  <>
                    <FileIcon className="file-icon" />
                    <a href={fileDownloadUrl(owner, dataset, number, row.path)} download={row.name} title={`Download ${row.path}`}>
                      {row.name}
                    </a>
                  </>
                )}
              </td>
              <td className="num">{bytes(row.size)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
