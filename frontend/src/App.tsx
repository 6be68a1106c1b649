import { BrowserRouter, Navigate, Route, Routes, useLocation } from 'react-router-dom'
import { AuthProvider, useAuth } from './auth/AuthContext'
import { Layout } from './components/Layout'
import { ErrorMessage, Loading } from './components/States'
import { LoginPage, SignupPage } from './pages/AuthPages'
import { ComparePage } from './pages/ComparePage'
import { DashboardPage } from './pages/DashboardPage'
import { DatasetPage } from './pages/datasets/DatasetPage'
import { DatasetsPage } from './pages/datasets/DatasetsPage'
import { VersionPage } from './pages/datasets/VersionPage'
import { JobPage } from './pages/job/JobPage'
import { NotFoundPage } from './pages/NotFoundPage'
import { ProjectPage } from './pages/ProjectPage'
import { TeamPage } from './pages/settings/TeamPage'
import { TeamsPage } from './pages/settings/TeamsPage'
import { TokensPage } from './pages/settings/TokensPage'
import { paths } from './routes'

/** Pages behind sign-in: an anonymous visitor goes to the login page, and comes back after. */
function RequireAuth() {
  const { state, refresh } = useAuth()
  const location = useLocation()
  if (state.status === 'loading') return <Loading what="Signing in" />
  if (state.status === 'error') return <ErrorMessage error={state.error} retry={() => void refresh()} />
  if (state.status === 'anonymous') {
    return <Navigate to={paths.login(location.pathname + location.search)} replace />
  }
  return <Layout />
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/signup" element={<SignupPage />} />
      <Route element={<RequireAuth />}>
        <Route index element={<DashboardPage />} />
        <Route path="/datasets" element={<DatasetsPage />} />
        <Route path="/settings" element={<Navigate to={paths.tokens()} replace />} />
        <Route path="/settings/tokens" element={<TokensPage />} />
        <Route path="/settings/teams" element={<TeamsPage />} />
        <Route path="/settings/teams/:team" element={<TeamPage />} />
        <Route path="/:owner/projects/:project" element={<ProjectPage />} />
        <Route path="/:owner/projects/:project/compare" element={<ComparePage />} />
        <Route path="/:owner/projects/:project/:number" element={<JobPage />} />
        <Route path="/:owner/datasets/:dataset" element={<DatasetPage />} />
        <Route path="/:owner/datasets/:dataset/:version" element={<VersionPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  )
}

export default function App() {
  return (
    <BrowserRouter>
      <AuthProvider>
        <AppRoutes />
      </AuthProvider>
    </BrowserRouter>
  )
}
