import { Link } from 'react-router-dom'
import { get, type Page } from '../../api/client'
import type { Dataset } from '../../api/datasets'
import { ago } from '../../components/format'
import { Empty, Loaded } from '../../components/States'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'

const SHOWN = 6

/** The newest datasets the user may see. The list comes oldest first, so the newest are on its
 * last pages: read the first page for the count, then the last two pages. */
export async function recentDatasets(path: string, signal: AbortSignal): Promise<Dataset[]> {
  const first = await get<Page<Dataset>>(path, signal)
  let rows = first.results
  const pages = Math.ceil(first.count / SHOWN)
  if (pages > 1) {
    const wanted = pages > 2 ? [pages - 1, pages] : [pages]
    const later = await Promise.all(wanted.map((page) => get<Page<Dataset>>(`${path}&page=${page}`, signal)))
    rows = [...(pages > 2 ? [] : rows), ...later.flatMap((page) => page.results)]
  }
  return rows.slice(-SHOWN).sort((a, b) => Date.parse(changed(b)) - Date.parse(changed(a)))
}

const changed = (dataset: Dataset) => dataset.updated_at ?? dataset.created_at

export function RecentDatasets({ username }: { username: string }) {
  const datasets = useApi(`datasets?page_size=${SHOWN}`, recentDatasets)
  return (
    <section className="card" aria-labelledby="recent-datasets">
      <div className="section-header">
        <h2 id="recent-datasets">Recent datasets</h2>
        <div className="actions">
          <Link to={paths.datasets()}>All datasets</Link>
        </div>
      </div>
      <Loaded {...datasets} what="Loading datasets">
        {(rows) => (rows.length === 0 ? <NoDatasets username={username} /> : <DatasetList rows={rows} />)}
      </Loaded>
    </section>
  )
}

function DatasetList({ rows }: { rows: Dataset[] }) {
  return (
    <ul className="dashboard-list">
      {rows.map((dataset) => (
        <li key={dataset.id}>
          <Link className="name" to={paths.dataset(dataset.owner, dataset.name)}>
            {dataset.full_name}
          </Link>
          <span className="aside">
            {dataset.latest_version ? `v${dataset.latest_version} · ${ago(changed(dataset))}` : 'no versions yet'}
          </span>
          {dataset.description && <span className="description">{dataset.description}</span>}
        </li>
      ))}
    </ul>
  )
}

function NoDatasets({ username }: { username: string }) {
  return (
    <Empty>
      <div className="getting-started">
        <strong>No datasets yet.</strong>
        <span>Upload one from the directory that holds the data:</span>
        <pre>
          <code>{`ferry data init mnist\nferry data upload -m "first cut"`}</code>
        </pre>
        <span className="muted">Jobs then mount it with --data {username}/datasets/mnist.</span>
      </div>
    </Empty>
  )
}
