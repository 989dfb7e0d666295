/**
 * The time now, read through `Clock` so a test's `TestClock` decides it. Code outside
 * Effect (the CLI's argument parsing, dev-consul's server, the browser page) keeps
 * `Date`; everything that runs as an Effect reads it here.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

/** Now, as an ISO-8601 timestamp (what documents in KV carry). */
export const nowIso: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())
