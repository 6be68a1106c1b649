import { useState } from 'react'
import {
  createToken,
  revokeToken,
  tokensPath,
  type ApiToken,
  type IssuedToken,
  type TokenScope,
} from '../../api/accounts'
import type { ApiError, Page } from '../../api/client'
import { ConfirmButton, Command, Field, FormError, asApiError, useSubmit } from '../../components/forms'
import { PageHeader } from '../../components/PageHeader'
import { Empty, ErrorMessage, Loaded } from '../../components/States'
import { ago, dateTime } from '../../components/format'
import { useApi } from '../../hooks/useApi'
import { SettingsNav } from './SettingsNav'

export function TokensPage() {
  const tokens = useApi<Page<ApiToken>>(tokensPath())
  // Held only in this component's state: leaving the page forgets the secret for good.
  const [issued, setIssued] = useState<IssuedToken | null>(null)

  function onCreated(token: IssuedToken) {
    setIssued(token)
    tokens.reload()
  }

  return (
    <div className="page">
      <PageHeader title="Settings" />
      <SettingsNav />
      <p className="muted">
        API tokens let the ferry CLI, scripts and other clients act as you. A read-only token can look but not change
        anything.
      </p>
      {issued && <IssuedSecret token={issued} onDone={() => setIssued(null)} />}
      <NewTokenForm onCreated={onCreated} />
      <h2>Your tokens</h2>
      <Loaded {...tokens} what="Loading tokens">
        {(data) => <TokenTable tokens={data.results} onRevoked={tokens.reload} />}
      </Loaded>
    </div>
  )
}

function IssuedSecret({ token, onDone }: { token: IssuedToken; onDone: () => void }) {
  return (
    <section className="card secret-card settings-form" aria-label="New token secret">
      <h2>Token “{token.name}” created</h2>
      <p>
        <strong>Copy the secret now: it is shown only this once.</strong> Ferry keeps only its hash.
      </p>
      <Command text={token.token} label="Copy the token" />
      <p className="muted">Sign the CLI in with it:</p>
      <Command text={`ferry login --host ${window.location.origin} --token ${token.token}`} label="Copy the login command" />
      <button type="button" className="button" onClick={onDone}>
        Done, I have copied it
      </button>
    </section>
  )
}

const EXPIRY_CHOICES: [string, string][] = [
  ['', 'Never'],
  ['7', 'In 7 days'],
  ['30', 'In 30 days'],
  ['90', 'In 90 days'],
  ['365', 'In a year'],
]

function NewTokenForm({ onCreated }: { onCreated: (token: IssuedToken) => void }) {
  const [name, setName] = useState('')
  const [scope, setScope] = useState<TokenScope>('write')
  const [days, setDays] = useState('')
  const { error, busy, onSubmit } = useSubmit(async () => {
    const token = await createToken({ name, scope, ...(days ? { expires_in_days: Number(days) } : {}) })
    setName('')
    onCreated(token)
  })
  return (
    <form className="card settings-form form-stack" aria-label="New token" onSubmit={(event) => void onSubmit(event)}>
      <h2>New token</h2>
      <FormError error={error} shown={['name', 'scope', 'expires_in_days']} />
      <div className="form-row">
        <Field label="Name" field="name" error={error}>
          {(props) => <input {...props} required value={name} placeholder="laptop" onChange={(event) => setName(event.target.value)} />}
        </Field>
        <Field label="Scope" field="scope" error={error}>
          {(props) => (
            <select {...props} value={scope} onChange={(event) => setScope(event.target.value as TokenScope)}>
              <option value="write">Read and write</option>
              <option value="read">Read only</option>
            </select>
          )}
        </Field>
        <Field label="Expires" field="expires_in_days" error={error}>
          {(props) => (
            <select {...props} value={days} onChange={(event) => setDays(event.target.value)}>
              {EXPIRY_CHOICES.map(([value, text]) => (
                <option key={value} value={value}>
                  {text}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <div>
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </div>
    </form>
  )
}

function tokenState(token: ApiToken): string {
  if (token.active) return 'active'
  return token.revoked_at ? 'revoked' : 'expired'
}

function TokenTable({ tokens, onRevoked }: { tokens: ApiToken[]; onRevoked: () => void }) {
  const [error, setError] = useState<ApiError | null>(null)
  const [busyId, setBusyId] = useState<number | null>(null)

  async function revoke(token: ApiToken) {
    setBusyId(token.id)
    setError(null)
    try {
      await revokeToken(token.id)
      onRevoked()
    } catch (caught) {
      setError(asApiError(caught))
    } finally {
      setBusyId(null)
    }
  }

  if (!tokens.length) return <Empty>No tokens yet: create one above to use the ferry CLI.</Empty>
  return (
    <>
      {error && <ErrorMessage error={error} />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Scope</th>
              <th className="hide-narrow">Created</th>
              <th className="hide-narrow">Last used</th>
              <th className="hide-narrow">Expires</th>
              <th>State</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {tokens.map((token) => (
              <tr key={token.id}>
                <td>
                  {token.name}
                  <div className="token-prefix">{token.prefix}…</div>
                </td>
                <td>{token.scope === 'read' ? 'read only' : 'read and write'}</td>
                <td className="hide-narrow" title={dateTime(token.created_at)}>{ago(token.created_at)}</td>
                <td className="hide-narrow" title={dateTime(token.last_used_at)}>{token.last_used_at ? ago(token.last_used_at) : 'never'}</td>
                <td className="hide-narrow">{token.expires_at ? dateTime(token.expires_at) : 'never'}</td>
                <td>
                  <span className={`badge ${token.active ? 'status-succeeded' : 'status-stopped'}`}>{tokenState(token)}</span>
                </td>
                <td>
                  {token.active && (
                    <ConfirmButton
                      label="Revoke"
                      name={`Revoke ${token.name}`}
                      question={`Revoke “${token.name}”? Whatever uses it stops working.`}
                      confirmLabel="Yes, revoke"
                      busy={busyId === token.id}
                      onConfirm={() => void revoke(token)}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  )
}
