import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { apiError, fakeApi, page } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'
import { mnist, version } from './fixtures'

afterEach(() => vi.unstubAllGlobals())

describe('a dataset page', () => {
  it('shows the facts, the versions and how to mount one in a job', async () => {
    fakeApi({
      '/api/v1/user': alice,
      '/api/v1/datasets/alice/mnist': mnist,
      '/api/v1/datasets/alice/mnist/versions': page([version(2, { message: 'more labels', author: 'bob' }), version(1)]),
    })

    renderApp('/alice/datasets/mnist')

    expect(await screen.findByRole('heading', { name: 'alice/mnist' })).toBeInTheDocument()
    expect(screen.getByText('Handwritten digits')).toBeInTheDocument()
    const v2 = await screen.findByRole('link', { name: 'v2' })
    expect(v2).toHaveAttribute('href', '/alice/datasets/mnist/2')
    const row = v2.closest('tr')!
    expect(row).toHaveTextContent('more labels')
    expect(row).toHaveTextContent('20')
    expect(row).toHaveTextContent('2.0 KB')
    expect(within(row).getByText('bob')).toBeInTheDocument()
    expect(screen.getByRole('link', { name: 'v1' })).toHaveAttribute('href', '/alice/datasets/mnist/1')
    expect(screen.getByText('ferry run --data alice/datasets/mnist/2:mnist "python train.py"')).toBeInTheDocument()
    expect(screen.getByText('ferry data init alice/mnist')).toBeInTheDocument()
  })

  it('says so when there is no version yet', async () => {
    fakeApi({
      '/api/v1/user': alice,
      '/api/v1/datasets/alice/mnist': { ...mnist, latest_version: null, version_count: 0 },
      '/api/v1/datasets/alice/mnist/versions': page([]),
    })

    renderApp('/alice/datasets/mnist')

    expect(await screen.findByText(/No versions yet/)).toBeInTheDocument()
  })

  it('answers an unknown dataset with "not found" and a way back', async () => {
    fakeApi({
      '/api/v1/user': alice,
      '/api/v1/datasets/alice/nope': apiError(404, 'No dataset alice/datasets/nope here, or you may not see it.'),
    })

    renderApp('/alice/datasets/nope')

    expect(await screen.findByRole('alert')).toHaveTextContent('Not found. No dataset alice/datasets/nope here')
    await userEvent.click(screen.getByRole('link', { name: 'Back to the datasets' }))
    expect(await screen.findByRole('heading', { name: 'Datasets' })).toBeInTheDocument()
  })
})
