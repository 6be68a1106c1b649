import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Membership } from '../../api/accounts'
import { apiError, fakeApi, page, reply, type Call } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'
import { aliceIn, member, vision } from './fixtures'

afterEach(() => vi.unstubAllGlobals())

describe('a team page', () => {
  /** A fake team whose member list follows the POST, PATCH and DELETE calls made to it. */
  function teamApi(me: Membership['role'], extra: Record<string, unknown> = {}) {
    let members = [member('alice', me), member('bob', 'member')]
    return fakeApi({
      '/api/v1/user': aliceIn(me),
      '/api/v1/teams/vision': vision,
      '/api/v1/teams/vision/members': () => page(members),
      'POST /api/v1/teams/vision/members': (call: Call) => {
        const body = call.body as { username: string; role: Membership['role'] }
        members = [...members, member(body.username, body.role)]
        return reply(201, member(body.username, body.role))
      },
      'PATCH /api/v1/teams/vision/members/bob': (call: Call) => {
        members = members.map((row) => (row.username === 'bob' ? { ...row, role: (call.body as { role: Membership['role'] }).role } : row))
        return members[1]
      },
      'DELETE /api/v1/teams/vision/members/bob': () => {
        members = members.filter((row) => row.username !== 'bob')
        return reply(204)
      },
      ...extra,
    })
  }

  it('lets an admin add a member by username', async () => {
    const api = teamApi('admin')

    renderApp('/settings/teams/vision')
    await userEvent.type(await screen.findByLabelText('Username'), 'carol')
    await userEvent.selectOptions(screen.getByLabelText('Role'), 'viewer')
    await userEvent.click(screen.getByRole('button', { name: 'Add member' }))

    const row = (await screen.findByText('carol')).closest('tr')!
    expect(within(row).getByLabelText('Role of carol')).toHaveValue('viewer')
    expect(api.calls.find((call) => call.method === 'POST')?.body).toEqual({ username: 'carol', role: 'viewer' })
    expect(screen.getByLabelText('Username')).toHaveValue('')
  })

  it('shows the field error of an unknown username', async () => {
    teamApi('owner', {
      'POST /api/v1/teams/vision/members': apiError(400, 'Check the fields.', { username: ['No user named carl.'] }),
    })

    renderApp('/settings/teams/vision')
    await userEvent.type(await screen.findByLabelText('Username'), 'carl')
    await userEvent.click(screen.getByRole('button', { name: 'Add member' }))

    expect(await screen.findByText('No user named carl.')).toBeInTheDocument()
  })

  it('changes a role and removes a member after asking', async () => {
    const api = teamApi('owner')

    renderApp('/settings/teams/vision')
    await userEvent.selectOptions(await screen.findByLabelText('Role of bob'), 'admin')
    expect(api.calls.find((call) => call.method === 'PATCH')?.body).toEqual({ role: 'admin' })

    await userEvent.click(screen.getByRole('button', { name: 'Remove bob' }))
    expect(screen.getByText('Remove bob from the team?')).toBeInTheDocument()
    expect(api.calls.some((call) => call.method === 'DELETE')).toBe(false)
    await userEvent.click(screen.getByRole('button', { name: 'Yes, remove' }))

    await vi.waitFor(() => expect(screen.queryByText('bob')).toBeNull())
    expect(api.calls.filter((call) => call.method === 'DELETE')).toHaveLength(1)
  })

  it("shows the API's message when it refuses a change", async () => {
    teamApi('owner', {
      'DELETE /api/v1/teams/vision/members/alice': apiError(409, 'A team keeps at least one owner: make someone else an owner first.'),
    })

    renderApp('/settings/teams/vision')
    await userEvent.click(await screen.findByRole('button', { name: 'Remove alice' }))
    expect(screen.getByText('Leave this team?')).toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'Yes, remove' }))

    expect(await screen.findByRole('alert')).toHaveTextContent('A team keeps at least one owner')
    expect(screen.getByLabelText('Role of alice')).toHaveValue('owner')
  })

  it('is read-only for a plain member', async () => {
    teamApi('member')

    renderApp('/settings/teams/vision')

    expect(await screen.findByText(/Only the team's owners and admins/)).toBeInTheDocument()
    expect(screen.queryByLabelText('Username')).toBeNull()
    expect(screen.queryByRole('button', { name: /Remove/ })).toBeNull()
    expect(screen.queryByLabelText('Role of bob')).toBeNull()
    expect(screen.getByText('bob').closest('tr')).toHaveTextContent('member')
  })

  it('answers an unknown team with "not found" and a link back', async () => {
    fakeApi({ '/api/v1/user': alice, '/api/v1/teams/nope': apiError(404, "No team named 'nope'.") })

    renderApp('/settings/teams/nope')

    expect(await screen.findByRole('alert')).toHaveTextContent("Not found. No team named 'nope'.")
    expect(screen.getByRole('link', { name: 'Back to your teams' })).toHaveAttribute('href', '/settings/teams')
  })
})
