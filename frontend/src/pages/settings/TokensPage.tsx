export function TokensPage() {
  return <div className="page">TokensPage</div>
}
