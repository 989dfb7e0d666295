// JSON with uint64 fields. Consul's Flags and indexes are uint64; JavaScript numbers
// lose precision above 2^53 (the Go api's lock flag 3304740253564472344 is one such
// value), so these fields travel as BigInt inside dev-consul and as exact digits on
// the wire.

type RawJSON = (text: string) => unknown
const rawJSON = (JSON as unknown as { rawJSON: RawJSON }).rawJSON

/**
 * A value JSON.stringify writes as the exact integer. (JSON.rawJSON is serialised
 * natively, so no replacer function has to visit every field of every response.)
 */
export function exactUint(n: bigint): unknown {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : rawJSON(n.toString())
}

/**
 * JSON.parse that keeps integer fields named in `exactFields` (compared case-insensitively,
 * as Go's decoder does) as BigInt built from their source text.
 */
export function parseJsonExact(text: string, exactFields: ReadonlySet<string>): unknown {
  return JSON.parse(
    text,
    function(key, value: unknown, context?: { source?: string }) {
      if (typeof value === "number" && exactFields.has(key.toLowerCase()) && context?.source !== undefined) {
        return /^-?\d+$/.test(context.source) ? BigInt(context.source) : value
      }
      return value
    } as (this: unknown, key: string, value: unknown) => unknown
  )
}

/** Parses a Go uint64 query parameter (`strconv.ParseUint(s, 10, 64)`). */
export function parseUint64(text: string): bigint | undefined {
  if (!/^\d+$/.test(text)) return undefined
  const n = BigInt(text)
  return n <= 0xffff_ffff_ffff_ffffn ? n : undefined
}

/** Case-insensitive field lookup, matching Go's encoding/json struct decoding. */
export function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name]
  const lower = name.toLowerCase()
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k]
  return undefined
}
