export function DatasetPage() {
  return <div className="page">DatasetPage</div>
}
