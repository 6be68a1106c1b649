/** A job's status as a coloured label; running states pulse. */
export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge status-${status}`} data-status={status}>
      {status.replace(/_/g, ' ')}
    </span>
  )
}
