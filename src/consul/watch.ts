/**
 * Blocking-query loops as streams, following Consul's client rules for blocking
 * queries: start at index 0, emit the first result and then only when the index
 * moves, reset to 0 when it goes backwards, keep it >= 1, never spin, and back off
 * with jitter on errors. Errors are logged, never end the stream; interrupting the
 * stream aborts the request in flight.
 *
 * Two limits keep a watch from loading Consul, as its blocking-query documentation
 * asks:
 * - every answer goes through a token bucket: a burst of 2, then one read per
 *   `minInterval` (1 s). A prefix that churns becomes polling at that rate; a single
 *   change after a quiet spell of two intervals is seen at once, one during a storm
 *   within an interval. "Still empty" answers are paced the same way, not slower: an
 *   empty prefix (a new app's `releases/`) reports the KV table's index, so Consul
 *   answers it at every write nearby, and a slower pace only made the app's first
 *   release wait for the end of it (docs/decisions.md, "What a node watches");
 * - answers that come back at once without a new index (a server that does not
 *   block) get a burst of 2 and then ever slower polling, up to 15 s.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { backoffDelay, CONSUL_BACKOFF_CAP_MS, consulRetry } from "../common/retry.ts"
import { parseDuration } from "../spec/duration.ts"
import { Consul } from "./consul.ts"
import type { ConsulError, Indexed, KvEntry } from "./consul.ts"

export interface WatchOptions {
  /** Blocking wait per request, a Go duration; default "5m" (Consul's own default). */
  readonly wait?: string
  /** Refill period of the token bucket, in ms: at most one read per this while churning. Default 1000. */
  readonly minIntervalMs?: number
  /** Read with `?stale` (any server answers): for watches that only show things. */
  readonly stale?: boolean
}

const DEFAULT_WAIT = "5m"
/** Token bucket capacity, and the free retries of answers without a new index. */
const BURST = 2
const DEFAULT_MIN_INTERVAL_MS = 1_000
const POLL_BASE_MS = 1_000

/** The decision one answer leads to, kept pure so the rules can be tested without a server. */
export interface WatchState {
  /** Index to send next (0: non-blocking). */
  readonly requestIndex: number
  /** Index of the last emitted result; undefined before the first. */
  readonly emittedIndex: number | undefined
  /** Consecutive answers that came back without a new index. */
  readonly idleStreak: number
  /** Tokens in the bucket at `tokensAt` (ms); every answer takes one. */
  readonly tokens: number
  readonly tokensAt: number
}

export const initialWatchState: WatchState = {
  requestIndex: 0,
  emittedIndex: undefined,
  idleStreak: 0,
  tokens: BURST,
  tokensAt: 0
}

export interface WatchStep {
  readonly state: WatchState
  readonly emit: boolean
  /** Pause before the next request, in ms (the anti-spin rate limit). */
  readonly delayMs: number
}

/**
 * `blocked` says the server held the request for a good part of the wait: an
 * unchanged answer after a real wait is normal, only quick ones count as spinning.
 * `now` (ms) refills the token bucket; `minIntervalMs` is its refill period.
 */
export const nextWatchStep = (
  state: WatchState,
  index: number,
  blocked: boolean,
  now: number,
  minIntervalMs: number = DEFAULT_MIN_INTERVAL_MS
): WatchStep => {
  const wentBackwards = index < state.requestIndex
  // A changed index is news, whichever way it moved (after a reset it may be lower).
  const emit = state.emittedIndex === undefined || index !== state.emittedIndex
  const idleStreak = emit || blocked ? 0 : state.idleStreak + 1
  const backoffMs = idleStreak <= BURST ? 0 : backoffDelay(idleStreak - BURST - 1, POLL_BASE_MS, CONSUL_BACKOFF_CAP_MS)
  // The next read spends a token; without one it waits for the refill.
  const refilled = Math.min(BURST, state.tokens + Math.max(0, now - state.tokensAt) / minIntervalMs)
  const bucketMs = refilled >= 1 ? 0 : (1 - refilled) * minIntervalMs
  return {
    state: {
      requestIndex: wentBackwards ? 0 : Math.max(1, index),
      emittedIndex: emit ? index : state.emittedIndex,
      idleStreak,
      // Below zero when this read waits for its token: that token is spent already.
      tokens: refilled - 1,
      tokensAt: now
    },
    emit,
    delayMs: Math.max(backoffMs, bucketMs)
  }
}

/**
 * Repeats `read` as a blocking query and emits its results by the rules above. `same`
 * can suppress an emission whose content did not change (an empty prefix's index is
 * the whole KV table's, so it moves on every write nearby).
 */
export const watchBlocking = <A>(
  describe: string,
  options: WatchOptions,
  read: (index: number, wait: string) => Effect.Effect<Indexed<A>, ConsulError, Consul>,
  same: (previous: A, next: A) => boolean = () => false
): Stream.Stream<Indexed<A>, never, Consul> =>
  Stream.suspend(() => {
    // Fresh state per run, so one stream value can be run more than once.
    let state = initialWatchState
    let last: { readonly value: A } | undefined
    let startedAt = 0
    const wait = options.wait ?? DEFAULT_WAIT
    const waitMs = parseDuration(wait) ?? 5 * 60_000
    const minIntervalMs = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS
    // Any failure is retried (a watch never ends), paced like every Consul retry.
    const readRetrying = Clock.currentTimeMillis.pipe(
      Effect.flatMap((now) => {
        startedAt = now
        return read(state.requestIndex, wait)
      }),
      Effect.tapError((error) => Effect.logWarning(`consul watch ${describe}: ${error.message}; retrying`)),
      Effect.retry(consulRetry),
      Effect.orDie // consulRetry never gives up
    )
    const step: Effect.Effect<Indexed<A>, never, Consul> = readRetrying.pipe(
      Effect.flatMap((result) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const blocked = state.requestIndex > 0 && now - startedAt >= waitMs / 2
          const next = nextWatchStep(state, result.index, blocked, now, minIntervalMs)
          state = next.state
          pause = next.delayMs
          if (next.emit && !(last !== undefined && same(last.value, result.value))) {
            last = { value: result.value }
            return Effect.succeed(result)
          }
          return Effect.sleep(takePause()).pipe(Effect.andThen(step))
        })
      )
    )
    // The pause the bucket asks for is taken before the next read, after the emitted
    // result has been handled, so a single change is never delayed. Without a pause the
    // next read still yields first: the fibers the result woke (a node's reconcile pass
    // and the status write it starts) go before it, not behind another request.
    let pause = 0
    const takePause = () => {
      const ms = pause
      pause = 0
      return ms
    }
    return Stream.fromEffectRepeat(Effect.suspend(() => {
      const ms = takePause()
      return ms > 0 ? Effect.sleep(ms).pipe(Effect.andThen(step)) : Effect.yieldNow.pipe(Effect.andThen(step))
    }))
  })

const staleRead = (options: WatchOptions) => (options.stale === true ? { stale: true } : {})

/**
 * Every entry under `prefix`, re-emitted whenever the prefix's index moves. While the
 * prefix is empty Consul reports the whole KV table's index and answers at every write
 * nearby (its watch is the nearest existing node of its radix tree, usually the app's
 * folder), so repeated "still empty" answers are not emitted: each would wake the
 * consumer (a node's reconcile pass) for every write nearby.
 */
export const watchPrefix = (
  prefix: string,
  options: WatchOptions = {}
): Stream.Stream<Indexed<ReadonlyArray<KvEntry>>, never, Consul> => {
  return watchBlocking(
    `prefix ${prefix}`,
    options,
    (index, wait) => Consul.use((c) => c.list(prefix, { index, wait, ...staleRead(options) })),
    (previous, next) => previous.length === 0 && next.length === 0
  )
}

/**
 * One key, re-emitted when its index moves. While the key is missing Consul reports
 * the whole KV table's index; since 1.12 a blocking read of a key still missing keeps
 * waiting through writes nearby (agent/blockingquery), and answers "still missing" only
 * when the table moved before the read arrived. Such answers are not emitted.
 */
export const watchKey = (
  key: string,
  options: WatchOptions = {}
): Stream.Stream<Indexed<KvEntry | undefined>, never, Consul> => {
  return watchBlocking(
    `key ${key}`,
    options,
    (index, wait) => Consul.use((c) => c.get(key, { index, wait, ...staleRead(options) })),
    (previous, next) => previous === undefined && next === undefined
  )
}
