// A job's output: the flat manifest of its files, and where to download each.
import { apiUrl, get, query, type Page } from './client'
import { jobPath } from './jobs'

export interface OutputFile {
  path: string
  name: string
  kind: 'file'
  size: number
  digest: string
  mode: number
  /** A signed storage URL, or null where Ferry serves the file itself. */
  url: string | null
}

/** More files than this under one folder are listed in part: a page should stay quick. */
export const LISTING_LIMIT = 10_000
const PAGE_SIZE = 1000

export const outputManifestPath = (owner: string, project: string, number: number | string, path: string) =>
  `${jobPath(owner, project, number)}/output/manifest` + query({ path, page_size: PAGE_SIZE })

export function outputFileUrl(owner: string, project: string, number: number | string, file: OutputFile): string {
  if (file.url) return file.url
  const encoded = file.path.split('/').map(encodeURIComponent).join('/')
  return apiUrl(`${jobPath(owner, project, number)}/output/files/${encoded}`)
}

export interface OutputListing {
  files: OutputFile[]
  /** How many files the folder holds in all (more than `files` when cut at the limit). */
  count: number
}

/** The files at or under a folder, page after page, up to LISTING_LIMIT. */
export async function loadOutputListing(path: string, signal: AbortSignal): Promise<OutputListing> {
  const files: OutputFile[] = []
  let next: string | null = path
  let count = 0
  while (next && files.length < LISTING_LIMIT) {
    const found: Page<OutputFile> = await get<Page<OutputFile>>(next, signal)
    files.push(...found.results)
    count = found.count
    next = found.next
  }
  return { files, count }
}
