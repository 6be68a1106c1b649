import { render } from '@testing-library/react'
import { MemoryRouter } from 'react-router-dom'
import { AppRoutes } from '../App'
import { AuthProvider } from '../auth/AuthContext'
import type { User } from '../api/auth'

export const alice: User = {
  id: 1,
  username: 'alice',
  email: 'alice@example.com',
  first_name: '',
  last_name: '',
  is_staff: false,
  teams: [],
}

/** The whole app at `path`, as the router would show it (add "/api/v1/user" to the fake API). */
export function renderApp(path: string) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <AuthProvider>
        <AppRoutes />
      </AuthProvider>
    </MemoryRouter>,
  )
}
