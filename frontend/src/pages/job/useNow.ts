import { useCallback, useState } from 'react'
import { useInterval } from '../../hooks/useApi'

/** The current time, refreshed every `ms` while `active`: for durations that tick. */
export function useNow(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now())
  const tick = useCallback(() => setNow(Date.now()), [])
  useInterval(tick, ms, active)
  return now
}
