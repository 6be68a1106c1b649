// How the UI writes times, durations, sizes and numbers: one place, so every page agrees.

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—'
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${m % 60}m`
  return `${Math.floor(h / 24)}d ${h % 24}h`
}

/** Seconds from `start` to `end`, or to now while `end` is null. */
export function elapsed(start: string | null | undefined, end: string | null | undefined, now = Date.now()): number | null {
  if (!start) return null
  const to = end ? Date.parse(end) : now
  return (to - Date.parse(start)) / 1000
}

export function bytes(size: number | null | undefined): string {
  if (size === null || size === undefined) return '—'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let value = size
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

/** "3 minutes ago" style, for lists. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—'
  const seconds = Math.round((now - Date.parse(iso)) / 1000)
  if (seconds < 45) return 'just now'
  const steps: [number, Intl.RelativeTimeFormatUnit][] = [
    [60, 'minute'],
    [3600, 'hour'],
    [86400, 'day'],
    [86400 * 30, 'month'],
    [86400 * 365, 'year'],
  ]
  let chosen: [number, Intl.RelativeTimeFormatUnit] = steps[0]
  for (const step of steps) if (seconds >= step[0]) chosen = step
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' })
  return format.format(-Math.round(seconds / chosen[0]), chosen[1])
}

/** A metric's value: up to 4 significant digits, exponent form for the very small or large. */
export function metric(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—'
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞'
  const magnitude = Math.abs(value)
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(3)
  return String(Number(value.toPrecision(4)))
}
