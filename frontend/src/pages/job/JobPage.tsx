export function JobPage() {
  return <div className="page">JobPage</div>
}
