export function TeamsPage() {
  return <div className="page">TeamsPage</div>
}
