import { NavLink } from 'react-router-dom'
import { paths } from '../../routes'
import './settings.css'

/** Tabs between the settings pages; a team's page sits under Teams. */
export function SettingsNav() {
  return (
    <nav className="tabs" aria-label="Settings">
      <NavLink to={paths.tokens()}>API tokens</NavLink>
      <NavLink to={paths.teams()}>Teams</NavLink>
    </nav>
  )
}
