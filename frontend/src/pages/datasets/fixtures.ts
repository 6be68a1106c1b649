// Datasets and versions as the API answers them, for the dataset pages' tests.
import type { Dataset, DatasetVersion } from '../../api/datasets'

export const mnist: Dataset = {
  id: 1,
  owner: 'alice',
  name: 'mnist',
  full_name: 'alice/datasets/mnist',
  description: 'Handwritten digits',
  visibility: 'private',
  latest_version: 2,
  version_count: 2,
  latest_size: 52_428_800,
  created_at: '2026-11-01T10:00:00Z',
  updated_at: '2026-11-20T10:00:00Z',
}

export const version = (number: number, extra: Partial<DatasetVersion> = {}): DatasetVersion => ({
  number,
  tree: `sha256:${'ab'.repeat(32)}`,
  message: `version ${number}`,
  size: 1024 * number,
  file_count: 10 * number,
  author: 'alice',
  created_at: '2026-11-20T10:00:00Z',
  ...extra,
})
