import { useCallback, useMemo } from 'react'
import { useSearchParams } from 'react-router-dom'
import { parseZooms, withZoom, type StepRange } from './chartData'

/** The charts' zooms, kept in the address (`?zoom=loss:100-200`) so a zoomed view can be shared. */
export function useZooms(): { zoomOf(key: string): StepRange | null; setZoom(key: string, range: StepRange | null): void } {
  const [search, setSearch] = useSearchParams()
  const values = search.getAll('zoom').join('\n')
  const zooms = useMemo(() => parseZooms(values ? values.split('\n') : []), [values])
  const zoomOf = useCallback((key: string) => zooms.get(key) ?? null, [zooms])
  const setZoom = useCallback(
    (key: string, range: StepRange | null) => setSearch((previous) => withZoom(previous, key, range)),
    [setSearch],
  )
  return { zoomOf, setZoom }
}
