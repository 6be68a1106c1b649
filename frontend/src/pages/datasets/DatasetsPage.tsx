export function DatasetsPage() {
  return <div className="page">DatasetsPage</div>
}
