import { Link, useSearchParams } from 'react-router-dom'
import { isFinished, type Job } from '../../api/jobs'
import {
  loadOutputListing,
  outputFileUrl,
  outputManifestPath,
  type OutputFile,
  type OutputListing,
} from '../../api/outputs'
import { bytes, dateTime } from '../../components/format'
import { Empty, Loaded } from '../../components/States'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { cleanFolder, entriesIn, type Entry } from './outputTree'

interface Props {
  owner: string
  project: string
  job: Job
}

export function OutputTab({ owner, project, job }: Props) {
  if (job.output === null) {
    return (
      <Empty>
        {isFinished(job.status)
          ? 'This job saved no output.'
          : 'The output is saved when the job ends: files written to /ferry/output appear here then.'}
      </Empty>
    )
  }
  return <OutputBrowser owner={owner} project={project} job={job} />
}

function OutputBrowser({ owner, project, job }: Props) {
  const [params] = useSearchParams()
  const folder = cleanFolder(params.get('path') ?? '')
  const listing = useApi<OutputListing>(outputManifestPath(owner, project, job.number, folder), loadOutputListing)
  const href = (path: string) => `${paths.job(owner, project, job.number, 'output')}${path ? `&path=${encodeURIComponent(path)}` : ''}`

  return (
    <section className="output-tab">
      <div className="toolbar">
        <FolderTrail folder={folder} href={href} />
        <span className="muted output-summary">
          {bytes(job.output_size)} in all{job.output_at ? `, saved ${dateTime(job.output_at)}` : ''}
        </span>
      </div>
      <Loaded {...listing} what="Loading the output">
        {(found) => <Listing owner={owner} project={project} job={job} folder={folder} listing={found} href={href} />}
      </Loaded>
    </section>
  )
}

function FolderTrail({ folder, href }: { folder: string; href: (path: string) => string }) {
  const parts = folder ? folder.split('/') : []
  return (
    <nav className="output-trail" aria-label="Folder">
      {parts.length ? <Link to={href('')}>output</Link> : <span aria-current="page">output</span>}
      {parts.map((part, index) => {
        const path = parts.slice(0, index + 1).join('/')
        const last = index === parts.length - 1
        return (
          <span key={path}>
            {' / '}
            {last ? <span aria-current="page">{part}</span> : <Link to={href(path)}>{part}</Link>}
          </span>
        )
      })}
    </nav>
  )
}

interface ListingProps extends Props {
  folder: string
  listing: OutputListing
  href(path: string): string
}

function Listing({ owner, project, job, folder, listing, href }: ListingProps) {
  const entries = entriesIn(listing.files, folder)
  if (listing.files.length === 0) {
    return <Empty>{folder ? `The output has no folder "${folder}".` : 'The job saved an empty output.'}</Empty>
  }
  // A ?path= that names a file lists that one file, as its parent folder would.
  const shown: Entry[] = entries.length ? entries : entriesIn(listing.files, folder.split('/').slice(0, -1).join('/'))
  return (
    <>
      {listing.count > listing.files.length && (
        <p className="muted">
          Showing the first {listing.files.length.toLocaleString()} of {listing.count.toLocaleString()} files under this
          folder; open a subfolder to see the rest.
        </p>
      )}
      <div className="table-wrap">
        <table className="table output-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Size</th>
              <th className="hide-narrow">Files</th>
              <th>
                <span className="visually-hidden">Download</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.map((entry) => (
              <EntryRow key={entry.path} entry={entry} href={href} download={(file) => outputFileUrl(owner, project, job.number, file)} />
            ))}
          </tbody>
        </table>
      </div>
    </>
  )
}

interface RowProps {
  entry: Entry
  href(path: string): string
  download(file: OutputFile): string
}

function EntryRow({ entry, href, download }: RowProps) {
  if (entry.kind === 'folder') {
    return (
      <tr>
        <td>
          <Link to={href(entry.path)} className="output-folder">
            {entry.name}/
          </Link>
        </td>
        <td>{bytes(entry.size)}</td>
        <td className="hide-narrow">{entry.files.toLocaleString()}</td>
        <td />
      </tr>
    )
  }
  return (
    <tr>
      <td className="mono">{entry.name}</td>
      <td>{bytes(entry.size)}</td>
      <td className="hide-narrow" />
      <td>
        <a className="button small" href={download(entry.file)} download={entry.name} aria-label={`Download ${entry.name}`}>
          Download
        </a>
      </td>
    </tr>
  )
}
