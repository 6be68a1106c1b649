import type { OutputFile } from '../../api/outputs'

export interface FolderEntry {
  kind: 'folder'
  name: string
  path: string
  size: number
  files: number
}
export interface FileEntry {
  kind: 'file'
  name: string
  path: string
  size: number
  file: OutputFile
}
export type Entry = FolderEntry | FileEntry

/** A folder's path without stray slashes: '' for the top. */
export const cleanFolder = (path: string) => path.split('/').filter(Boolean).join('/')

/**
 * What sits directly in `folder`, from the flat list of files at or under it: folders first
 * (with their total size and file count), then files, each by name.
 */
export function entriesIn(files: OutputFile[], folder: string): Entry[] {
  const prefix = folder ? `${folder}/` : ''
  const folders = new Map<string, FolderEntry>()
  const plain: FileEntry[] = []
  for (const file of files) {
    if (!file.path.startsWith(prefix)) continue
    const rest = file.path.slice(prefix.length)
    const slash = rest.indexOf('/')
    if (slash === -1) {
      plain.push({ kind: 'file', name: rest, path: file.path, size: file.size, file })
      continue
    }
    const name = rest.slice(0, slash)
    const entry = folders.get(name) ?? { kind: 'folder', name, path: prefix + name, size: 0, files: 0 }
    entry.size += file.size
    entry.files += 1
    folders.set(name, entry)
  }
  const byName = (a: Entry, b: Entry) => a.name.localeCompare(b.name)
  return [...[...folders.values()].sort(byName), ...plain.sort(byName)]
}
