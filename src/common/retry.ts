/**
 * How Sacar waits before trying again, as values: the one backoff formula and the few
 * named schedules built on it. Each service says what is worth retrying with its own
 * predicate next to its errors (`isTransientConsulError` in consul/consul.ts,
 * `isTransientGitHubError` in github/errors.ts, `isTransientDownload` in
 * artifacts/errors.ts); a loop pairs the two with `Effect.retry({ schedule, while })`.
 * Delays are slept through `Clock` and jitter is drawn from `Random`, so tests run them
 * on `TestClock` (docs/decisions.md, "Retries and time are values").
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"

/**
 * Delay (ms) before retry number `attempt` (0-based): exponential from `baseMs`,
 * capped at `capMs`, with "equal jitter" (half fixed, half `random`), so many
 * processes that lost a service at the same moment do not come back in lockstep.
 * Pure: the watch's pacing (`consul/watch.ts`) computes it inline.
 */
export const backoffDelay = (attempt: number, baseMs: number, capMs: number, random = Math.random()): number => {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt))
  return ceiling / 2 + random * (ceiling / 2)
}

/** `backoffDelay` as a Schedule (forever: bound it with `times`, `while` or a deadline). */
export const backoff = (base: Duration.Input, cap: Duration.Input): Schedule.Schedule<Duration.Duration> => {
  const baseMs = Duration.toMillis(Duration.fromInputUnsafe(base))
  const capMs = Duration.toMillis(Duration.fromInputUnsafe(cap))
  return Schedule.exponential(base).pipe(
    Schedule.modifyDelay(({ attempt }) =>
      Effect.map(Random.next, (random) => backoffDelay(attempt - 1, baseMs, capMs, random))
    )
  )
}

/** Consul recovery is noticed within this long at the latest. */
export const CONSUL_BACKOFF_CAP_MS = 15_000

/**
 * Transient Consul errors (`isTransientConsulError`): 250 ms doubling to
 * 15 s, jittered, and never sooner than a 429/503's Retry-After. The lock, the
 * semaphore, the watch's error pacing and the reconciler's Consul writes use it.
 */
export const consulRetry: Schedule.Schedule<Duration.Duration, RetryAfter> = backoff(
  "250 millis",
  Duration.millis(CONSUL_BACKOFF_CAP_MS)
).pipe(
  Schedule.setInputType<RetryAfter>(),
  Schedule.modifyDelay(({ duration, input }) =>
    Effect.succeed(Math.max(Duration.toMillis(duration), input.retryAfterMs ?? 0))
  )
)

/** An error that may say how long the server asked to be left alone (ConsulUnavailable). */
interface RetryAfter {
  readonly _tag: string
  readonly retryAfterMs?: number | undefined
}

/**
 * Starting over with a new session after a term ended in an error (the node's
 * registration, the controller's leadership): 500 ms doubling to 10 s, jittered.
 */
export const sessionTermRetry: Schedule.Schedule<Duration.Duration> = backoff("500 millis", "10 seconds")

/** One try at taking a key with a session, and so how soon to try again. */
export type AcquireAttempt =
  | "acquired"
  /** Held by a dead predecessor's session, which was just destroyed: again at once. */
  | "predecessor-freed"
  /** Free but refused: the last holder's lock-delay has not run out. */
  | "lock-delay"
  /** Held by another live session: a person must act (two processes with one name). */
  | "held"

const ACQUIRE_DELAY_MS: Record<AcquireAttempt, number> = {
  "acquired": 0,
  "predecessor-freed": 0,
  "lock-delay": 1_000,
  "held": 5_000
}

/**
 * Taking a key with a session (the node's registration) until it is taken: the pause
 * is what the last try found (`AcquireAttempt`), not a backoff; a lock-delay ends
 * after seconds, and a key held by someone else is looked at again every 5 s so
 * the node registers as soon as the other process stops.
 */
export const acquireRetry: Schedule.Schedule<number, AcquireAttempt> = Schedule.forever.pipe(
  Schedule.setInputType<AcquireAttempt>(),
  Schedule.while(({ input }) => input !== "acquired"),
  Schedule.modifyDelay(({ input }) => Effect.succeed(ACQUIRE_DELAY_MS[input]))
)

/**
 * A session renew that failed: again every second, never past the time the session
 * has left (the caller stops at its TTL; consul/session.ts).
 */
export const SESSION_RENEW_RETRY_MS = 1_000

/**
 * What the reconciler must get through Consul however long it takes (the node's
 * status flush, a pre-deploy turn): 300 ms doubling, then every 5 s, unjittered (one
 * node's own writes, nothing to spread).
 */
export const consulWriteRetry: Schedule.Schedule<Duration.Duration> = Schedule.min([
  Schedule.exponential("300 millis"),
  Schedule.spaced("5 seconds")
])

/**
 * GitHub: a create whose first answer was retryable, looked for and sent again on
 * the client's own pacing (`tuning.retryBaseMs` doubling, `tuning.retries` in all).
 * Reads and updates are retried inside Octokit (its retry plugin, same tuning).
 */
export const githubRetry = (baseMs: number, retries: number) =>
  Schedule.max([Schedule.exponential(Duration.millis(baseMs)), Schedule.recurs(Math.max(0, retries))])

/**
 * `sacar notify` while the controller restarts: 500 ms doubling to 10 s, jittered, as
 * long as the next try starts within `budgetMs` (its --timeout) of the first.
 */
export const notifyRetry = (budgetMs: number): Schedule.Schedule<Duration.Duration> =>
  backoff("500 millis", "10 seconds").pipe(
    Schedule.while(({ elapsed, duration }) => elapsed + Duration.toMillis(duration) <= budgetMs)
  )

/**
 * Artifact downloads: `baseDelay` doubling up to `maxDelay`, jittered ±20 %, at most
 * `retries` times; what is retryable is the DownloadError's `retryable`.
 */
export const downloadRetry = (policy: {
  readonly retries: number
  readonly baseDelay: Duration.Input
  readonly maxDelay: Duration.Input
}) =>
  Schedule.min([Schedule.exponential(policy.baseDelay), Schedule.spaced(policy.maxDelay)]).pipe(
    Schedule.jittered,
    (capped) => Schedule.max([capped, Schedule.recurs(policy.retries)])
  )
