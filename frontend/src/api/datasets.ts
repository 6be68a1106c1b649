import { apiUrl, post, query } from './client'

export type Visibility = 'private' | 'public'

export interface Dataset {
  id: number
  owner: string
  name: string
  /** "owner/datasets/name" */
  full_name: string
  description: string
  visibility: Visibility
  latest_version: number | null
  version_count: number
  /** The latest version's size in bytes; null while there is no version. */
  latest_size: number | null
  created_at: string
  /** When the latest version was made; null while there is no version. */
  updated_at: string | null
}

export interface DatasetVersion {
  number: number
  tree: string
  message: string
  size: number
  file_count: number
  author: string | null
  created_at: string
}

/** One row of a folder's listing: a file, or a folder with the bytes it holds. */
export interface Listing {
  path: string
  name: string
  kind: 'file' | 'dir'
  size: number
  digest: string | null
  mode: number | null
}

export interface DatasetCreate {
  name: string
  description: string
  visibility: Visibility
  /** A team's name; the user's own namespace when absent. */
  owner?: string
}

const seg = encodeURIComponent

/** Rows per page of a folder's listing: the most the listing endpoint gives at once. */
export const LISTING_PAGE_SIZE = 200

export const datasetsPath = (search = '', page = 1) => `datasets${query({ search, page: page > 1 ? page : null })}`
export const datasetPath = (owner: string, name: string) => `datasets/${seg(owner)}/${seg(name)}`
export const versionsPath = (owner: string, name: string, page = 1) =>
  `${datasetPath(owner, name)}/versions${query({ page: page > 1 ? page : null })}`
export const versionPath = (owner: string, name: string, number: number | string) =>
  `${datasetPath(owner, name)}/versions/${number}`
export const listingPath = (owner: string, name: string, number: number | string, folder: string, page = 1) =>
  `${versionPath(owner, name, number)}/files${query({ path: folder, page: page > 1 ? page : null, page_size: LISTING_PAGE_SIZE })}`

/** Where the browser downloads one file (a same-origin address; the server may redirect to storage). */
export const fileDownloadUrl = (owner: string, name: string, number: number | string, path: string) =>
  apiUrl(`${versionPath(owner, name, number)}/files/${path.split('/').map(seg).join('/')}`)

/** Where the browser downloads a whole version as one tar stream. */
export const tarDownloadUrl = (owner: string, name: string, number: number | string) =>
  apiUrl(`${versionPath(owner, name, number)}/tar`)

export const createDataset = (body: DatasetCreate) => post<Dataset>('datasets', body)
