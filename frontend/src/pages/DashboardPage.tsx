import { useAuth } from '../auth/AuthContext'
import { MyProjects } from './dashboard/MyProjects'
import { RecentDatasets } from './dashboard/RecentDatasets'
import { RunningJobs } from './dashboard/RunningJobs'
import './dashboard/Dashboard.css'

/** Where a signed-in user starts: their projects, what runs now, and recent datasets. */
export function DashboardPage() {
  const { user } = useAuth()
  return (
    <div className="page dashboard">
      <div className="page-header">
        <h1>Dashboard</h1>
      </div>
      <RunningJobs />
      <div className="dashboard-columns">
        <MyProjects username={user.username} teams={user.teams.map((team) => team.name)} />
        <RecentDatasets username={user.username} />
      </div>
    </div>
  )
}
