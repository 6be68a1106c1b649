export function DashboardPage() {
  return <div className="page">DashboardPage</div>
}
