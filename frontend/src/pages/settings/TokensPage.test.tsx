import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ApiToken } from '../../api/accounts'
import { apiError, fakeApi, page, reply } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'

afterEach(() => vi.unstubAllGlobals())

const laptop: ApiToken = {
  id: 7,
  name: 'laptop',
  prefix: 'fy_ab12',
  scope: 'write',
  created_at: '2026-11-01T10:00:00Z',
  expires_at: null,
  last_used_at: '2026-11-20T10:00:00Z',
  revoked_at: null,
  active: true,
}
const old: ApiToken = { ...laptop, id: 3, name: 'old-ci', scope: 'read', revoked_at: '2026-11-02T10:00:00Z', active: false }

describe('the API tokens page', () => {
  it('lists the tokens with their scope and state', async () => {
    fakeApi({ '/api/v1/user': alice, '/api/v1/user/tokens': page([laptop, old]) })

    renderApp('/settings/tokens')

    const row = (await screen.findByText('laptop')).closest('tr')!
    expect(row).toHaveTextContent('read and write')
    expect(row).toHaveTextContent('active')
    const revoked = screen.getByText('old-ci').closest('tr')!
    expect(revoked).toHaveTextContent('read only')
    expect(revoked).toHaveTextContent('revoked')
    expect(within(revoked).queryByRole('button')).toBeNull()
  })

  it('shows a new secret once, with the login command, and forgets it on leaving', async () => {
    const api = fakeApi({
      '/api/v1/user': alice,
      '/api/v1/user/tokens': page([]),
      'POST /api/v1/user/tokens': reply(201, { ...laptop, name: 'ci', token: 'fy_secret_123' }),
      '/api/v1/teams': page([]),
    })

    renderApp('/settings/tokens')
    await userEvent.type(await screen.findByLabelText('Name'), 'ci')
    await userEvent.selectOptions(screen.getByLabelText('Scope'), 'read')
    await userEvent.selectOptions(screen.getByLabelText('Expires'), '30')
    await userEvent.click(screen.getByRole('button', { name: 'Create token' }))

    expect(await screen.findByText('fy_secret_123')).toBeInTheDocument()
    expect(screen.getByText(/it is shown only this once/)).toBeInTheDocument()
    expect(screen.getByText(`ferry login --host ${window.location.origin} --token fy_secret_123`)).toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Copy the token' })).toBeInTheDocument()
    expect(api.calls.find((call) => call.method === 'POST')?.body).toEqual({ name: 'ci', scope: 'read', expires_in_days: 30 })

    await userEvent.click(screen.getByRole('link', { name: 'Teams' }))
    expect(await screen.findByText(/You are in no team yet/)).toBeInTheDocument()
    await userEvent.click(screen.getByRole('link', { name: 'API tokens' }))
    expect(await screen.findByRole('button', { name: 'Create token' })).toBeInTheDocument()
    expect(screen.queryByText(/fy_secret_123/)).toBeNull()
  })

  it('copies the secret to the clipboard', async () => {
    fakeApi({
      '/api/v1/user': alice,
      '/api/v1/user/tokens': page([]),
      'POST /api/v1/user/tokens': reply(201, { ...laptop, token: 'fy_secret_123' }),
    })
    const user = userEvent.setup()

    renderApp('/settings/tokens')
    await user.type(await screen.findByLabelText('Name'), 'laptop')
    await user.click(screen.getByRole('button', { name: 'Create token' }))
    await user.click(await screen.findByRole('button', { name: 'Copy the token' }))

    expect(await navigator.clipboard.readText()).toBe('fy_secret_123')
  })

  it('asks before it revokes a token', async () => {
    let revoked = false
    const api = fakeApi({
      '/api/v1/user': alice,
      '/api/v1/user/tokens': () => page([revoked ? { ...laptop, active: false, revoked_at: '2026-11-27T10:00:00Z' } : laptop]),
      'DELETE /api/v1/user/tokens/7': () => {
        revoked = true
        return reply(204)
      },
    })

    renderApp('/settings/tokens')
    await userEvent.click(await screen.findByRole('button', { name: 'Revoke laptop' }))
    expect(screen.getByText(/Whatever uses it stops working/)).toBeInTheDocument()
    expect(api.calls.some((call) => call.method === 'DELETE')).toBe(false)

    await userEvent.click(screen.getByRole('button', { name: 'Cancel' }))
    expect(api.calls.some((call) => call.method === 'DELETE')).toBe(false)

    await userEvent.click(screen.getByRole('button', { name: 'Revoke laptop' }))
    await userEvent.click(screen.getByRole('button', { name: 'Yes, revoke' }))
    expect(await screen.findByText('revoked')).toBeInTheDocument()
    expect(api.calls.filter((call) => call.method === 'DELETE')).toHaveLength(1)
  })

  it('puts the API field errors next to the fields', async () => {
    fakeApi({
      '/api/v1/user': alice,
      '/api/v1/user/tokens': page([]),
      'POST /api/v1/user/tokens': apiError(400, 'Check the fields.', { name: ['Ensure this field has no more than 100 characters.'] }),
    })

    renderApp('/settings/tokens')
    await userEvent.type(await screen.findByLabelText('Name'), 'x')
    await userEvent.click(screen.getByRole('button', { name: 'Create token' }))

    expect(await screen.findByText('Ensure this field has no more than 100 characters.')).toBeInTheDocument()
    expect(screen.getByLabelText('Name')).toHaveAccessibleDescription('Ensure this field has no more than 100 characters.')
    expect(screen.getByRole('alert')).toHaveTextContent('Check the fields marked below.')
  })

  it('says so when there is no token', async () => {
    fakeApi({ '/api/v1/user': alice, '/api/v1/user/tokens': page([]) })
    renderApp('/settings/tokens')
    expect(await screen.findByText(/No tokens yet/)).toBeInTheDocument()
  })
})
