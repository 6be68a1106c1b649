// The log's lines, drawn in fixed blocks of lines: a block once full never renders again, and
// the browser skips laying out blocks off screen, so a log of 100,000 lines stays responsive.
import { memo, useLayoutEffect, useMemo, useRef, type ReactNode, type UIEvent } from 'react'
import { lastRewrite, type LogBuffer } from './useJobLog'

const BLOCK = 500
/** Within this many pixels of the bottom counts as "at the end" (fractional scroll positions). */
const AT_END_PX = 24

interface Props {
  buffer: LogBuffer
  version: number
  /** The search in lower case, '' for none. */
  needle: string
  /** What useMatches found for `needle`. */
  matches: number[] | null
  follow: boolean
  onFollowChange(follow: boolean): void
}

export function LogView({ buffer, version, needle, matches, follow, onFollowChange }: Props) {
  const box = useRef<HTMLDivElement>(null)
  const count = buffer.lines.length

  useLayoutEffect(() => {
    const element = box.current
    if (follow && element) element.scrollTop = element.scrollHeight
  }, [follow, version, matches])

  const onScroll = (event: UIEvent<HTMLDivElement>) => {
    const element = event.currentTarget
    const atEnd = element.scrollHeight - element.scrollTop - element.clientHeight <= AT_END_PX
    if (atEnd !== follow) onFollowChange(atEnd)
  }

  return (
    <div className="log-view" data-testid="log-lines" ref={box} onScroll={onScroll} tabIndex={0} aria-label="Log">
      {matches === null ? (
        <AllLines buffer={buffer} count={count} partial={buffer.partial} />
      ) : (
        <MatchingLines buffer={buffer} matches={matches} needle={needle} />
      )}
    </div>
  )
}

/**
 * Indices of the lines holding `needle` (null without a search), the unfinished line counted
 * as index `count`. `count` and `partial` stand for the buffer's content: lines only grow.
 */
export function useMatches(buffer: LogBuffer, count: number, partial: string, needle: string): number[] | null {
  return useMemo(() => {
    if (!needle) return null
    const found: number[] = []
    for (let i = 0; i < count; i++) if (buffer.lines[i].toLowerCase().includes(needle)) found.push(i)
    if (partial.toLowerCase().includes(needle)) found.push(count)
    return found
  }, [buffer, count, partial, needle])
}

function AllLines({ buffer, count, partial }: { buffer: LogBuffer; count: number; partial: string }) {
  const blocks: ReactNode[] = []
  for (let start = 0; start < count; start += BLOCK) {
    blocks.push(<PlainBlock key={start} buffer={buffer} generation={buffer.generation} start={start} end={Math.min(start + BLOCK, count)} />)
  }
  return (
    <>
      {blocks}
      {partial && <pre className="log-block">{lastRewrite(partial)}</pre>}
    </>
  )
}

interface BlockProps {
  buffer: LogBuffer
  generation: number
  start: number
  end: number
}

// Lines are append-only between clears, so the same (generation, start, end) holds the same text.
const sameBlock = (a: BlockProps, b: BlockProps) =>
  a.buffer === b.buffer && a.generation === b.generation && a.start === b.start && a.end === b.end

const PlainBlock = memo(function PlainBlock({ buffer, start, end }: BlockProps) {
  return <pre className="log-block">{buffer.lines.slice(start, end).join('\n') + '\n'}</pre>
}, sameBlock)

function MatchingLines({ buffer, matches, needle }: { buffer: LogBuffer; matches: number[]; needle: string }) {
  if (matches.length === 0) return <p className="log-none">No line matches.</p>
  const blocks: ReactNode[] = []
  for (let start = 0; start < matches.length; start += BLOCK) {
    const part = matches.slice(start, start + BLOCK)
    blocks.push(<MatchBlock key={`${needle}:${start}`} buffer={buffer} lines={part} needle={needle} />)
  }
  return <>{blocks}</>
}

function MatchBlock({ buffer, lines, needle }: { buffer: LogBuffer; lines: number[]; needle: string }) {
  return (
    <pre className="log-block">
      {lines.map((index) => (
        <span className="log-line" key={index}>
          <span className="log-number" aria-hidden="true">
            {index + 1}
          </span>
          {highlight(index < buffer.lines.length ? buffer.lines[index] : lastRewrite(buffer.partial), needle)}
          {'\n'}
        </span>
      ))}
    </pre>
  )
}

/** `line` with each occurrence of `needle` (lower case) marked. */
export function highlight(line: string, needle: string): ReactNode[] {
  const lower = line.toLowerCase()
  const parts: ReactNode[] = []
  let from = 0
  for (let at = lower.indexOf(needle); at !== -1 && needle; at = lower.indexOf(needle, from)) {
    if (at > from) parts.push(line.slice(from, at))
    parts.push(<mark key={at}>{line.slice(at, at + needle.length)}</mark>)
    from = at + needle.length
  }
  if (from < line.length) parts.push(line.slice(from))
  return parts
}
