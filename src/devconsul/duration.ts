// Go's time.ParseDuration, because Consul reads `wait`, `TTL` and `LockDelay` with it
// and a client that works here must not send something a real Consul rejects.

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3, // U+00B5 micro sign
  "μs": 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9
}

const PART = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/

/** Nanoseconds for a Go duration string such as `10s`, `1m30s`, `250ms`; undefined if Go would reject it. */
export function parseGoDuration(text: string): number | undefined {
  let rest = text
  let sign = 1
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1
    rest = rest.slice(1)
  }
  if (rest === "0") return 0
  if (rest === "") return undefined
  let total = 0
  while (rest !== "") {
    const m = PART.exec(rest)
    if (m === null) return undefined
    total += Number(m[1]) * (UNIT_NS[m[2] as string] as number)
    rest = rest.slice(m[0].length)
  }
  return sign * Math.round(total)
}

/** Go's Duration.String(), used where Consul echoes a duration in a message (`24h0m0s`). */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return "0s"
  const neg = ns < 0
  let rest = Math.abs(ns)
  let out: string
  if (rest < 1e9) {
    if (rest < 1e3) out = `${rest}ns`
    else if (rest < 1e6) out = `${rest / 1e3}µs`
    else out = `${rest / 1e6}ms`
  } else {
    const h = Math.floor(rest / 3600e9)
    rest -= h * 3600e9
    const m = Math.floor(rest / 60e9)
    rest -= m * 60e9
    const s = `${rest / 1e9}s`
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s
  }
  return neg ? `-${out}` : out
}
