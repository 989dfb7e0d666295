/**
 * Go-style durations ("15m", "1h30m", "90s", "500ms"), the form operators already
 * write in Nomad and Consul. Documents keep the string so they stay readable in the
 * Consul UI; code turns it into milliseconds with `durationMillis`.
 */
import * as Schema from "effect/Schema"

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y

/** Milliseconds for a duration string, or undefined when it is not one. */
export const parseDuration = (text: string): number | undefined => {
  if (text.length === 0) return undefined
  let total = 0
  PART.lastIndex = 0
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex
    const match = PART.exec(text)
    if (match === null || match.index !== start) return undefined
    total += Number(match[1]) * UNIT_MS[match[2]!]!
  }
  return total
}

export const DurationString = Schema.String.check(
  Schema.makeFilter((s: string) =>
    parseDuration(s) === undefined
      ? `expected a duration such as "90s", "15m" or "1h30m", got ${JSON.stringify(s)}`
      : undefined
  )
)

/** For strings that already passed `DurationString`. */
export const durationMillis = (text: string): number => {
  const ms = parseDuration(text)
  if (ms === undefined) throw new Error(`not a duration: ${text}`)
  return ms
}

/**
 * How long ago `iso` was, in its largest whole unit ("42s", "5m", "3h", "2d"), as
 * `sacar status` and the status page show ages; undefined for a missing or bad time.
 */
export const roughAge = (iso: string | undefined, now: Date): string | undefined => {
  const at = iso === undefined ? NaN : Date.parse(iso)
  if (Number.isNaN(at)) return undefined
  const s = Math.max(0, Math.round((now.getTime() - at) / 1000))
  return s < 60
    ? `${s}s`
    : s < 3600
    ? `${Math.floor(s / 60)}m`
    : s < 86_400
    ? `${Math.floor(s / 3600)}h`
    : `${Math.floor(s / 86_400)}d`
}

/** The inverse, for messages: 61500 -> "1m1.5s". */
export const formatDuration = (ms: number): string => {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  const s = (ms % 60_000) / 1000
  const parts = [h > 0 ? `${h}h` : "", m > 0 ? `${m}m` : "", s > 0 ? `${Number(s.toFixed(1))}s` : ""]
  return parts.join("") || "0s"
}
