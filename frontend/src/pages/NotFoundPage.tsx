import { Link } from 'react-router-dom'
import { paths } from '../routes'

export function NotFoundPage() {
  return (
    <div className="page">
      <h1>Page not found</h1>
      <p className="muted">
        Nothing lives at this address. Check the link, or go back to the <Link to={paths.dashboard()}>dashboard</Link>.
      </p>
    </div>
  )
}
