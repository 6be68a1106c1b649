// The title row every page opens with, so that pages line up and share the .page-header styles.
import type { ReactNode } from 'react'

/**
 * Breadcrumbs (when the page sits under another), the title, what qualifies it (badges, a
 * status) and the page's actions, pushed to the right.
 */
export function PageHeader({ title, breadcrumbs, actions, children }: {
  title: ReactNode
  breadcrumbs?: ReactNode
  actions?: ReactNode
  children?: ReactNode
}) {
  return (
    <>
      {breadcrumbs && <div className="breadcrumbs">{breadcrumbs}</div>}
      <div className="page-header">
        <h1>{title}</h1>
        {children}
        {actions && <div className="actions">{actions}</div>}
      </div>
    </>
  )
}

/** The header's "New …" button: it opens and closes the form that creates one. */
export function NewFormToggle({ label, open, onToggle }: { label: string; open: boolean; onToggle: (open: boolean) => void }) {
  return (
    <button type="button" className="button primary" aria-expanded={open} onClick={() => onToggle(!open)}>
      {label}
    </button>
  )
}
