import { screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { apiError, fakeApi, page } from '../test/fakeApi'
import { alice, renderApp } from '../test/render'

const anonymous = apiError(401, 'Sign in first.')

afterEach(() => vi.unstubAllGlobals())

describe('signing in', () => {
  it('sends an anonymous visitor to the login page, then back where they were going', async () => {
    const api = fakeApi({
      '/api/v1/user': anonymous,
      'POST /api/v1/auth/login': alice,
      '/api/v1/user/tokens': page([]),
    })
    document.cookie = 'csrftoken=tok123'

    renderApp('/settings/tokens')
    await userEvent.type(await screen.findByLabelText('Username or email'), 'alice')
    await userEvent.type(screen.getByLabelText('Password'), 'secret-pass')
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }))

    expect(await screen.findByText('alice')).toBeInTheDocument()
    const login = api.calls.find((call) => call.url === '/api/v1/auth/login')
    expect(login?.body).toEqual({ username: 'alice', password: 'secret-pass' })
    expect(login?.headers['X-CSRFToken']).toBe('tok123')
  })

  it('shows the message of a refused login and stays on the form', async () => {
    fakeApi({ '/api/v1/user': anonymous, 'POST /api/v1/auth/login': apiError(400, 'Wrong username or password.') })

    renderApp('/login')
    await userEvent.type(await screen.findByLabelText('Username or email'), 'alice')
    await userEvent.type(screen.getByLabelText('Password'), 'nope')
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }))

    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong username or password.')
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeEnabled()
  })

  it('puts each field error under its field on sign-up', async () => {
    fakeApi({
      '/api/v1/user': anonymous,
      'POST /api/v1/auth/signup': apiError(400, 'Check the fields.', { username: ['That name is taken.'] }),
    })

    renderApp('/signup')
    await userEvent.type(await screen.findByLabelText('Username'), 'bob')
    await userEvent.type(screen.getByLabelText('Email'), 'bob@example.com')
    await userEvent.type(screen.getByLabelText('Password'), 'long-enough-pass')
    await userEvent.click(screen.getByRole('button', { name: 'Create account' }))

    expect(await screen.findByText('That name is taken.')).toBeInTheDocument()
  })
})
