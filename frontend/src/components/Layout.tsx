import { useState } from 'react'
import { Link, NavLink, Outlet, useNavigate } from 'react-router-dom'
import { useAuth } from '../auth/AuthContext'
import { FerryMark } from './Icons'
import { paths } from '../routes'

export function Layout() {
  const { user, signOut } = useAuth()
  const navigate = useNavigate()
  const [menuOpen, setMenuOpen] = useState(false)

  async function handleSignOut() {
    await signOut()
    navigate(paths.login())
  }

  return (
    <div className="app">
      <header className="topbar">
        <Link to={paths.dashboard()} className="brand" aria-label="Ferry home">
          <FerryMark size={22} className="brand-mark" /> Ferry
        </Link>
        <button
          type="button"
          className="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="main-nav"
          onClick={() => setMenuOpen((open) => !open)}
        >
          Menu
        </button>
        <nav id="main-nav" className={menuOpen ? 'nav open' : 'nav'} onClick={() => setMenuOpen(false)}>
          <NavLink to={paths.dashboard()} end>
            Dashboard
          </NavLink>
          <NavLink to={paths.datasets()}>Datasets</NavLink>
          <NavLink to={paths.tokens()}>Settings</NavLink>
          <span className="nav-user" title={user.email}>
            {user.username}
          </span>
          <button type="button" className="link-button" onClick={() => void handleSignOut()}>
            Sign out
          </button>
        </nav>
      </header>
      <main className="content">
        <Outlet />
      </main>
    </div>
  )
}
