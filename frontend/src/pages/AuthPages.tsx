import { useState, type FormEvent } from 'react'
import { Link, Navigate, useNavigate, useSearchParams } from 'react-router-dom'
import { ApiError } from '../api/client'
import { useAuth } from '../auth/AuthContext'
import { paths } from '../routes'

/** Where to go after signing in: the page that sent the user here, if it is one of ours. */
function nextPath(params: URLSearchParams): string {
  const next = params.get('next') ?? '/'
  return next.startsWith('/') && !next.startsWith('//') ? next : '/'
}

function FieldErrors({ error, field }: { error: ApiError | null; field: string }) {
  const messages = error?.fields[field]
  if (!messages?.length) return null
  return (
    <span className="field-error" id={`${field}-error`}>
      {messages.join(' ')}
    </span>
  )
}

function useSubmit(action: () => Promise<void>) {
  const [error, setError] = useState<ApiError | null>(null)
  const [busy, setBusy] = useState(false)
  async function onSubmit(event: FormEvent) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await action()
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(0, 'error', String(caught)))
      setBusy(false)
    }
  }
  return { error, busy, onSubmit }
}

export function LoginPage() {
  const { state, signIn } = useAuth()
  const [params] = useSearchParams()
  const navigate = useNavigate()
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const next = nextPath(params)
  const { error, busy, onSubmit } = useSubmit(async () => {
    await signIn(username, password)
    navigate(next, { replace: true })
  })
  if (state.status === 'signed-in' && !busy) return <Navigate to={next} replace />

  return (
    <div className="auth-page">
      <form className="card auth-card" onSubmit={(e) => void onSubmit(e)} aria-labelledby="login-title">
        <h1 id="login-title">Sign in to Ferry</h1>
        {error && error.status !== 400 && <div className="state state-error" role="alert">{error.message}</div>}
        {error && error.status === 400 && !Object.keys(error.fields).length && (
          <div className="state state-error" role="alert">{error.message}</div>
        )}
        <label>
          Username or email
          <input name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
          <FieldErrors error={error} field="username" />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <FieldErrors error={error} field="password" />
        </label>
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted">
          New here? <Link to={paths.signup()}>Create an account</Link>
        </p>
      </form>
    </div>
  )
}

export function SignupPage() {
  const { state, signUp } = useAuth()
  const navigate = useNavigate()
  const [username, setUsername] = useState('')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const { error, busy, onSubmit } = useSubmit(async () => {
    await signUp(username, email, password)
    navigate('/', { replace: true })
  })
  if (state.status === 'signed-in' && !busy) return <Navigate to="/" replace />

  return (
    <div className="auth-page">
      <form className="card auth-card" onSubmit={(e) => void onSubmit(e)} aria-labelledby="signup-title">
        <h1 id="signup-title">Create your Ferry account</h1>
        {error && !Object.keys(error.fields).length && <div className="state state-error" role="alert">{error.message}</div>}
        <label>
          Username
          <input name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
          <FieldErrors error={error} field="username" />
        </label>
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <FieldErrors error={error} field="email" />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <FieldErrors error={error} field="password" />
        </label>
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create account'}
        </button>
        <p className="muted">
          Have an account? <Link to={paths.login()}>Sign in</Link>
        </p>
      </form>
    </div>
  )
}
