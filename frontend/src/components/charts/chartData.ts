// The data logic of a metric chart, kept apart from uPlot so it can be tested without a canvas:
// bucket answers to uPlot's aligned arrays and bands, a zoom to the series request, the zoom in
// the address, and dropping answers that a newer request has overtaken.
import { MAX_BUCKETS, type Series, type SeriesQuery } from '../../api/metrics'

/** A step range, both ends included. */
export interface StepRange {
  from: number
  to: number
}

/**
 * uPlot's data: [x, then for each series its mean, min and max], all on one shared x (uPlot
 * draws aligned arrays); null where a series has no bucket at that x.
 */
export type AlignedData = (number | null)[][]

export interface ChartData {
  data: AlignedData
  /** For each series, the indices in `data` of its [max, min] arrays: the band between them. */
  bands: [number, number][]
  /** The widest bucket of any series: 1 means the chart shows raw points. */
  width: number
  /** True when no series has a point to draw. */
  empty: boolean
}

/** Where a bucket sits on the x axis: the middle of the steps it covers. */
export function bucketX(first: number, last: number): number {
  return Math.floor((first + last) / 2)
}

/** One chart's data from its series (null: that job has no such series). */
export function toChartData(series: (Series | null)[]): ChartData {
  const xs = new Set<number>()
  for (const one of series) for (const b of one?.buckets ?? []) xs.add(bucketX(b.first_step, b.last_step))
  const x = [...xs].sort((a, b) => a - b)
  const index = new Map(x.map((value, i) => [value, i]))
  const data: AlignedData = [x]
  const bands: [number, number][] = []
  for (const one of series) {
    const mean = new Array<number | null>(x.length).fill(null)
    const min = new Array<number | null>(x.length).fill(null)
    const max = new Array<number | null>(x.length).fill(null)
    for (const b of one?.buckets ?? []) {
      const i = index.get(bucketX(b.first_step, b.last_step))!
      // A raw point whose value was NaN has no mean; its last value is still NaN: a gap.
      mean[i] = finite(b.mean)
      min[i] = finite(b.min)
      max[i] = finite(b.max)
    }
    const base = data.length
    data.push(mean, min, max)
    bands.push([base + 2, base + 1])
  }
  const width = Math.max(1, ...series.map((one) => one?.width ?? 1))
  return { data, bands, width, empty: x.length === 0 }
}

function finite(value: number | null): number | null {
  return value === null || !Number.isFinite(value) ? null : value
}

/**
 * How many buckets to ask for at a chart width: about one per pixel, rounded up to a multiple
 * of 100 so that a resize by a few pixels does not fetch again.
 */
export function bucketsFor(pixels: number): number {
  const rounded = Math.ceil(Math.max(pixels, 100) / 100) * 100
  return Math.min(rounded, MAX_BUCKETS)
}

/** The series request for a key at a width, over a zoomed range if there is one. */
export function seriesQuery(key: string, pixels: number, zoom: StepRange | null): SeriesQuery {
  const q: SeriesQuery = { key, buckets: bucketsFor(pixels) }
  if (zoom) {
    q.first_step = zoom.from
    q.last_step = zoom.to
  }
  return q
}

/** A selection on the x axis (values, possibly fractional or reversed) as whole steps. */
export function selectionRange(a: number, b: number): StepRange | null {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null
  const from = Math.ceil(Math.min(a, b))
  const to = Math.floor(Math.max(a, b))
  return to >= from ? { from, to } : null
}

// --- the zoom in the address: ?zoom=<key>:<from>-<to>, one per zoomed chart -----------------

const RANGE = /^(-?\d+)-(-?\d+)$/

export function formatZoom(key: string, range: StepRange): string {
  return `${key}:${range.from}-${range.to}`
}

/** The zooms in `?zoom=` values, by key; a value that does not parse is ignored. */
export function parseZooms(values: string[]): Map<string, StepRange> {
  const zooms = new Map<string, StepRange>()
  for (const value of values) {
    // A key may hold ':' itself; the range is what follows the last one.
    const at = value.lastIndexOf(':')
    const match = at > 0 ? RANGE.exec(value.slice(at + 1)) : null
    if (!match) continue
    const from = Number(match[1])
    const to = Number(match[2])
    if (Number.isSafeInteger(from) && Number.isSafeInteger(to) && from <= to) zooms.set(value.slice(0, at), { from, to })
  }
  return zooms
}

/** The address's query with one key's zoom set (or cleared, for null), the rest kept. */
export function withZoom(search: URLSearchParams, key: string, range: StepRange | null): URLSearchParams {
  const next = new URLSearchParams(search)
  const kept = search.getAll('zoom').filter((value) => !parseZooms([value]).has(key))
  next.delete('zoom')
  for (const value of kept) next.append('zoom', value)
  if (range) next.append('zoom', formatZoom(key, range))
  return next
}

// --- answers that arrive late ----------------------------------------------------------------

/**
 * Hands out tickets in order; only the newest is current. A chart takes a ticket per request
 * and drops any answer whose ticket is no longer current: when the user zooms quickly, an
 * older, slower answer must not replace the newer range.
 */
export class LatestOnly {
  private last = 0

  begin(): number {
    this.last += 1
    return this.last
  }

  isCurrent(ticket: number): boolean {
    return ticket === this.last
  }
}
