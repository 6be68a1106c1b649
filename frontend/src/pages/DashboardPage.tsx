import { useAuth } from '../auth/AuthContext'
import { PageHeader } from '../components/PageHeader'
import { MyProjects } from './dashboard/MyProjects'
import { RecentDatasets } from './dashboard/RecentDatasets'
import { RunningJobs } from './dashboard/RunningJobs'
import './dashboard/Dashboard.css'

/** Where a signed-in user starts: their projects, what runs now, and recent datasets. */
export function DashboardPage() {
  const { user } = useAuth()
  return (
    <div className="page dashboard">
      <PageHeader title="Dashboard" />
      <RunningJobs />
      <div className="dashboard-columns">
        <MyProjects username={user.username} teams={user.teams.map((team) => team.name)} />
        <RecentDatasets username={user.username} />
      </div>
    </div>
  )
}
