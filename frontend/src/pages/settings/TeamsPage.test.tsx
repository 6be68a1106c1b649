import { screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { apiError, fakeApi, page, reply } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'
import { aliceIn, member, vision } from './fixtures'

afterEach(() => vi.unstubAllGlobals())

describe('the teams page', () => {
  it('lists my teams with my role in each', async () => {
    fakeApi({ '/api/v1/user': aliceIn('admin'), '/api/v1/teams': page([vision]) })

    renderApp('/settings/teams')

    const link = await screen.findByRole('link', { name: 'vision' })
    expect(link).toHaveAttribute('href', '/settings/teams/vision')
    expect(link.closest('tr')).toHaveTextContent('admin')
    expect(link.closest('tr')).toHaveTextContent('Vision lab')
  })

  it('creates a team and opens it', async () => {
    let created = false
    const api = fakeApi({
      '/api/v1/user': () => (created ? aliceIn('owner') : alice),
      '/api/v1/teams': page([]),
      'POST /api/v1/teams': () => {
        created = true
        return reply(201, vision)
      },
      '/api/v1/teams/vision': vision,
      '/api/v1/teams/vision/members': page([member('alice', 'owner')]),
    })

    renderApp('/settings/teams')
    await userEvent.click(await screen.findByRole('button', { name: 'New team' }))
    await userEvent.type(screen.getByLabelText('Name'), 'vision')
    await userEvent.type(screen.getByLabelText('Display name'), 'Vision lab')
    await userEvent.click(screen.getByRole('button', { name: 'Create team' }))

    expect(await screen.findByRole('heading', { name: 'Vision lab' })).toBeInTheDocument()
    expect(api.calls.find((call) => call.method === 'POST')?.body).toEqual({ name: 'vision', display_name: 'Vision lab', description: '' })
  })

  it('puts a refused name next to the name field', async () => {
    fakeApi({
      '/api/v1/user': alice,
      '/api/v1/teams': page([]),
      'POST /api/v1/teams': apiError(400, 'Check the fields.', { name: ["'datasets' is reserved; choose another name."] }),
    })

    renderApp('/settings/teams')
    await userEvent.click(await screen.findByRole('button', { name: 'New team' }))
    await userEvent.type(screen.getByLabelText('Name'), 'datasets')
    await userEvent.click(screen.getByRole('button', { name: 'Create team' }))

    expect(await screen.findByText("'datasets' is reserved; choose another name.")).toBeInTheDocument()
    expect(screen.getByLabelText('Name')).toHaveAccessibleDescription(/reserved; choose another name/)
  })
})
