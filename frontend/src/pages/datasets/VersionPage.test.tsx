import { screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Listing } from '../../api/datasets'
import { apiError, fakeApi, type Call } from '../../test/fakeApi'
import { alice, renderApp } from '../../test/render'
import { version } from './fixtures'

afterEach(() => vi.unstubAllGlobals())

const BASE = '/api/v1/datasets/alice/mnist/versions/3'

const dir = (path: string, size: number): Listing => ({ path, name: path.split('/').pop()!, kind: 'dir', size, digest: null, mode: null })
const file = (path: string, size: number): Listing => ({ path, name: path.split('/').pop()!, kind: 'file', size, digest: 'sha256:00', mode: 0o644 })

const folders: Record<string, Listing[]> = {
  '': [dir('train', 3000), file('labels.csv', 120), file('README.md', 10)],
  train: [dir('train/cats', 2000), file('train/index.json', 1000)],
  'train/cats': [file('train/cats/001.png', 2000)],
}

/** The listing endpoint: one folder, named by ?path=, paged. */
function listing(call: Call) {
  const params = new URL(call.url, 'http://ferry.test').searchParams
  const rows = folders[params.get('path') ?? '']
  if (!rows) return apiError(404, `alice/datasets/mnist/3 has no directory '${params.get('path')}'.`)
  return { count: rows.length, next: null, previous: null, results: rows }
}

const routes = {
  '/api/v1/user': alice,
  [BASE]: version(3, { message: 'cats added', file_count: 4, size: 4130 }),
  [`${BASE}/files`]: listing,
}

const listedPaths = (calls: Call[]) =>
  calls.filter((call) => call.url.startsWith(`${BASE}/files`)).map((call) => new URL(call.url, 'http://ferry.test').searchParams.get('path') ?? '')

describe('a version page', () => {
  it('lists the top folder, folders first, with a download per file and for the whole version', async () => {
    fakeApi(routes)

    renderApp('/alice/datasets/mnist/3')

    const list = await screen.findByTestId('file-list')
    const names = within(list).getAllByRole('link').map((link) => link.textContent)
    expect(names).toEqual(['train/', 'labels.csv', 'README.md'])
    expect(within(list).getByRole('link', { name: 'labels.csv' })).toHaveAttribute('href', `${BASE}/files/labels.csv`)
    expect(within(list).getByRole('link', { name: 'train/' })).toHaveAttribute('href', '/alice/datasets/mnist/3?path=train')
    expect(screen.getByRole('link', { name: 'Download all (.tar)' })).toHaveAttribute('href', `${BASE}/tar`)
    expect(screen.getByText('cats added')).toBeInTheDocument()
  })

  it('walks into folders through ?path= and back up by the breadcrumbs', async () => {
    const api = fakeApi(routes)

    renderApp('/alice/datasets/mnist/3')
    await userEvent.click(await screen.findByRole('link', { name: 'train/' }))
    await userEvent.click(await screen.findByRole('link', { name: 'cats/' }))

    const list = await screen.findByTestId('file-list')
    expect(await within(list).findByRole('link', { name: '001.png' })).toHaveAttribute('href', `${BASE}/files/train/cats/001.png`)
    const crumbs = screen.getByRole('navigation', { name: 'Folder' })
    expect(within(crumbs).getByText('cats')).toHaveAttribute('aria-current', 'page')
    await userEvent.click(within(crumbs).getByRole('link', { name: 'v3' }))
    expect(await screen.findByRole('link', { name: 'labels.csv' })).toBeInTheDocument()
    expect(listedPaths(api.calls)).toEqual(['', 'train', 'train/cats', ''])
  })

  it('opens the folder the address names', async () => {
    const api = fakeApi(routes)

    renderApp('/alice/datasets/mnist/3?path=train')

    expect(await screen.findByRole('link', { name: 'index.json' })).toBeInTheDocument()
    await userEvent.click(screen.getByRole('link', { name: '.. (up a folder)' }))
    expect(await screen.findByRole('link', { name: 'README.md' })).toBeInTheDocument()
    expect(listedPaths(api.calls)).toEqual(['train', ''])
  })

  it('pages through a large folder rather than showing it whole', async () => {
    const rows = Array.from({ length: 200 }, (_, i) => file(`f${String(i).padStart(6, '0')}.bin`, 1))
    const api = fakeApi({
      ...routes,
      [`${BASE}/files`]: (call: Call) => ({
        count: 100_000,
        next: call.url.includes('page=2') ? `${BASE}/files?page=3` : `${BASE}/files?page=2`,
        previous: call.url.includes('page=2') ? `${BASE}/files` : null,
        results: rows,
      }),
    })

    renderApp('/alice/datasets/mnist/3')

    const list = await screen.findByTestId('file-list')
    // Role queries over 200 rows are slow in jsdom; count the rows directly.
    expect(list.querySelectorAll('tbody tr')).toHaveLength(200)
    expect(screen.getByText(/Page 1 of 500/)).toBeInTheDocument()
    await userEvent.click(screen.getByRole('link', { name: 'Next →' }))
    expect(await screen.findByText(/Page 2 of 500/)).toBeInTheDocument()
    const asked = api.calls.filter((call) => call.url.startsWith(`${BASE}/files`)).map((call) => call.url)
    expect(asked).toEqual([`${BASE}/files?page_size=200`, `${BASE}/files?page=2&page_size=200`])
  })

  it('answers an unknown version with "not found" and a link to the dataset', async () => {
    fakeApi({ '/api/v1/user': alice, '/api/v1/datasets/alice/mnist/versions/9': apiError(404, 'alice/datasets/mnist has no version 9.') })

    renderApp('/alice/datasets/mnist/9')

    expect(await screen.findByRole('alert')).toHaveTextContent('Not found. alice/datasets/mnist has no version 9.')
    expect(screen.getByRole('link', { name: 'Back to alice/mnist' })).toHaveAttribute('href', '/alice/datasets/mnist')
  })

  it('answers an unknown folder with "not found" and a link to the top', async () => {
    fakeApi(routes)

    renderApp('/alice/datasets/mnist/3?path=nope')

    expect(await screen.findByRole('alert')).toHaveTextContent("has no directory 'nope'")
    await userEvent.click(screen.getByRole('link', { name: 'Back to the top folder' }))
    expect(await screen.findByRole('link', { name: 'labels.csv' })).toBeInTheDocument()
  })

  it('says so when the version holds no file', async () => {
    fakeApi({ ...routes, [`${BASE}/files`]: { count: 0, next: null, previous: null, results: [] } })

    renderApp('/alice/datasets/mnist/3')

    expect(await screen.findByText('This version has no files.')).toBeInTheDocument()
  })
})
