import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Dataset } from '../../api/datasets'
import { apiError, fakeApi, page, reply } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'
import { mnist } from './fixtures'

afterEach(() => vi.unstubAllGlobals())

const empty: Dataset = { ...mnist, id: 2, owner: 'vision', name: 'cifar', full_name: 'vision/datasets/cifar', description: '', visibility: 'public', latest_version: null, version_count: 0, latest_size: null, updated_at: null }

describe('the datasets page', () => {
  it('lists the datasets with their versions, latest size and owner', async () => {
    fakeApi({ '/api/v1/user': alice, '/api/v1/datasets': page([mnist, empty]) })

    renderApp('/datasets')

    const row = (await screen.findByRole('link', { name: 'alice/mnist' })).closest('tr')!
    expect(row).toHaveTextContent('Handwritten digits')
    expect(row).toHaveTextContent('50 MB')
    expect(within(row).getByRole('link', { name: 'latest v2' })).toHaveAttribute('href', '/alice/datasets/mnist/2')
    expect(screen.getByRole('link', { name: 'alice/mnist' })).toHaveAttribute('href', '/alice/datasets/mnist')
    expect(screen.getByRole('link', { name: 'vision/cifar' }).closest('tr')).toHaveTextContent('—')
  })

  it('filters through the address and the API', async () => {
    const api = fakeApi({
      '/api/v1/user': alice,
      // Keys with a query first: a key without one answers any query.
      '/api/v1/datasets?search=zz': page([]),
      '/api/v1/datasets': page([mnist]),
    })

    renderApp('/datasets?search=mn')

    expect(await screen.findByLabelText('Filter')).toHaveValue('mn')
    expect(await screen.findByRole('link', { name: 'alice/mnist' })).toBeInTheDocument()
    expect(api.calls.some((call) => call.url === '/api/v1/datasets?search=mn')).toBe(true)
    await userEvent.clear(screen.getByLabelText('Filter'))
    await userEvent.type(screen.getByLabelText('Filter'), 'zz')
    expect(await screen.findByText(/No dataset you can see matches “zz”/)).toBeInTheDocument()
  })

  it('says how to start when there is no dataset', async () => {
    fakeApi({ '/api/v1/user': alice, '/api/v1/datasets': page([]) })

    renderApp('/datasets')

    expect(await screen.findByText(/No datasets yet/)).toBeInTheDocument()
  })

  it('shows an error the API gives for the list, with a retry', async () => {
    fakeApi({ '/api/v1/user': alice, '/api/v1/datasets': reply(500, {}) })

    renderApp('/datasets')

    expect(await screen.findByRole('alert')).toHaveTextContent('Ferry failed to answer')
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument()
  })

  it('creates a dataset, showing the upload commands, and opens it', async () => {
    const api = fakeApi({
      '/api/v1/user': alice,
      '/api/v1/datasets': page([]),
      'POST /api/v1/datasets': reply(201, { ...mnist, name: 'faces', latest_version: null }),
      '/api/v1/datasets/alice/faces': { ...mnist, name: 'faces', description: 'Faces', latest_version: null },
      '/api/v1/datasets/alice/faces/versions': page([]),
    })

    renderApp('/datasets')
    await userEvent.click(await screen.findByRole('button', { name: 'New dataset' }))
    await userEvent.type(screen.getByLabelText('Name'), 'faces')
    await userEvent.type(screen.getByLabelText('Description'), 'Faces')
    await userEvent.click(screen.getByLabelText(/Public/))
    expect(screen.getByText('ferry data init alice/faces')).toBeInTheDocument()
    expect(screen.getByText('ferry data upload -m "what changed"')).toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'Create dataset' }))

    expect(await screen.findByRole('heading', { name: 'alice/faces' })).toBeInTheDocument()
    const created = api.calls.find((call) => call.method === 'POST')
    expect(created?.body).toEqual({ name: 'faces', description: 'Faces', visibility: 'public' })
  })

  it('puts the API field errors next to the fields', async () => {
    fakeApi({
      '/api/v1/user': alice,
      '/api/v1/datasets': page([]),
      'POST /api/v1/datasets': apiError(400, 'Check the fields.', { name: ['A dataset named mnist exists already.'] }),
    })

    renderApp('/datasets')
    await userEvent.click(await screen.findByRole('button', { name: 'New dataset' }))
    await userEvent.type(screen.getByLabelText('Name'), 'mnist')
    await userEvent.click(screen.getByRole('button', { name: 'Create dataset' }))

    expect(await screen.findByText('A dataset named mnist exists already.')).toBeInTheDocument()
    expect(screen.getByLabelText('Name')).toHaveAccessibleDescription('A dataset named mnist exists already.')
  })

  it('offers the teams as owners of a new dataset', async () => {
    const api = fakeApi({
      '/api/v1/user': { ...alice, teams: [{ name: 'vision', role: 'admin' }] },
      '/api/v1/datasets': page([]),
      'POST /api/v1/datasets': reply(201, empty),
      '/api/v1/datasets/vision/cifar': empty,
      '/api/v1/datasets/vision/cifar/versions': page([]),
    })

    renderApp('/datasets')
    await userEvent.click(await screen.findByRole('button', { name: 'New dataset' }))
    await userEvent.selectOptions(screen.getByLabelText('Owner'), 'vision')
    await userEvent.type(screen.getByLabelText('Name'), 'cifar')
    await userEvent.click(screen.getByRole('button', { name: 'Create dataset' }))

    expect(await screen.findByText(/No versions yet/)).toBeInTheDocument()
    expect(api.calls.find((call) => call.method === 'POST')?.body).toMatchObject({ owner: 'vision', name: 'cifar' })
  })
})
