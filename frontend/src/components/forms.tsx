// Form pieces the settings and dataset pages share: a submit that keeps the API's error, field
// errors under their fields, a two-step confirm for what cannot be undone, a copyable command.
import { useId, useState, type FormEvent, type ReactNode } from 'react'
import { ApiError } from '../api/client'
import './forms.css'

export function asApiError(caught: unknown): ApiError {
  return caught instanceof ApiError ? caught : new ApiError(0, 'error', String(caught))
}

/** Runs `action` on submit; keeps its ApiError (null after a success) and whether it runs. */
export function useSubmit(action: () => Promise<void>) {
  const [error, setError] = useState<ApiError | null>(null)
  const [busy, setBusy] = useState(false)
  async function onSubmit(event?: FormEvent) {
    event?.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await action()
    } catch (caught) {
      setError(asApiError(caught))
    } finally {
      setBusy(false)
    }
  }
  return { error, busy, onSubmit, clear: () => setError(null) }
}

/** The messages the API gave for one field, under it. */
export function FieldError({ error, field, id }: { error: ApiError | null; field: string; id?: string }) {
  const messages = error?.fields[field]
  if (!messages?.length) return null
  return (
    <span className="field-error" id={id}>
      {messages.join(' ')}
    </span>
  )
}

export interface ControlProps {
  id: string
  'aria-describedby'?: string
  'aria-invalid'?: boolean
}

/**
 * A labelled form control with its hint and the API's errors for it. The errors sit outside the
 * label, tied to the control by aria-describedby, so they do not change the control's name.
 */
export function Field({ label, field, error, hint, children }: {
  label: string
  field: string
  error: ApiError | null
  hint?: ReactNode
  children: (props: ControlProps) => ReactNode
}) {
  const id = useId()
  const invalid = Boolean(error?.fields[field]?.length)
  const described = [hint ? `${id}-hint` : '', invalid ? `${id}-error` : ''].filter(Boolean).join(' ')
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-describedby': described || undefined, 'aria-invalid': invalid || undefined })}
      {hint && (
        <span className="muted field-hint" id={`${id}-hint`}>
          {hint}
        </span>
      )}
      <FieldError error={error} field={field} id={`${id}-error`} />
    </div>
  )
}

/**
 * The error's message, unless every message is already shown next to a field in `shown`.
 * Errors about the whole input (DRF's non_field_errors) come out here too.
 */
export function FormError({ error, shown = [] }: { error: ApiError | null; shown?: string[] }) {
  if (!error) return null
  const others = Object.entries(error.fields).filter(([field]) => !shown.includes(field))
  const onlyFields = Object.keys(error.fields).length > 0 && others.length === 0
  return (
    <div className="state state-error" role="alert">
      {onlyFields ? 'Check the fields marked below.' : error.message}
      {others.map(([field, messages]) => (
        <div key={field}>{messages.join(' ')}</div>
      ))}
    </div>
  )
}

/** A form's submit button, which says what it is doing while it runs, and a Cancel beside it. */
export function SubmitOrCancel({ label, busyLabel, busy, disabled = false, onCancel, className = 'form-row' }: {
  label: string
  busyLabel: string
  busy: boolean
  /** True while the form cannot be sent yet (a required field is empty). */
  disabled?: boolean
  onCancel: () => void
  className?: string
}) {
  return (
    <div className={className}>
      <button type="submit" className="button primary" disabled={busy || disabled}>
        {busy ? busyLabel : label}
      </button>
      <button type="button" className="button" onClick={onCancel}>
        Cancel
      </button>
    </div>
  )
}

/**
 * A button that asks before it acts: the first press shows the question with a confirm and a
 * cancel button, so nothing irreversible happens on a single stray click.
 */
export function ConfirmButton({
  label,
  name = label,
  question,
  confirmLabel,
  onConfirm,
  busy = false,
}: {
  label: string
  /** The accessible name, when the visible label alone is ambiguous in a list ("Revoke laptop"). */
  name?: string
  question: ReactNode
  confirmLabel: string
  onConfirm: () => void
  busy?: boolean
}) {
  const [asking, setAsking] = useState(false)
  if (!asking) {
    return (
      <button type="button" className="button small danger" onClick={() => setAsking(true)} disabled={busy} aria-label={name}>
        {label}
      </button>
    )
  }
  return (
    <span className="confirm" role="group" aria-label={name}>
      <span>{question}</span>{' '}
      <button
        type="button"
        className="button small danger"
        disabled={busy}
        onClick={() => {
          setAsking(false)
          onConfirm()
        }}
      >
        {confirmLabel}
      </button>{' '}
      <button type="button" className="button small" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  )
}

/** A command to paste into a shell, with a copy button. */
export function Command({ text, label = 'Copy command' }: { text: string; label?: string }) {
  return (
    <div className="command">
      <code>{text}</code>
      <CopyButton text={text} label={label} />
    </div>
  )
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState<boolean | null>(null)
  async function copy() {
    try {
      await navigator.clipboard.writeText(text)
      setCopied(true)
    } catch {
      // Clipboard access needs a secure context; the text stays selectable to copy by hand.
      setCopied(false)
    }
  }
  return (
    <button type="button" className="button small" onClick={() => void copy()} aria-label={label}>
      {copied === null ? 'Copy' : copied ? 'Copied' : 'Copy failed: select it'}
    </button>
  )
}
