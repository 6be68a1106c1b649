export function TeamPage() {
  return <div className="page">TeamPage</div>
}
