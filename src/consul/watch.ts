/**
 * Blocking-query loops as streams, following Consul's client rules for blocking
 * queries: start at index 0, emit the first result and then only when the index
 * moves, reset to 0 when it goes backwards, keep it >= 1, never spin (a server that
 * answers at once without a new index gets a burst of 2 and then ever slower polling,
 * up to 15 s), and back off with jitter on errors. Errors are logged, never end the
 * stream; interrupting the stream aborts the request in flight.
 */
import { Effect, Stream } from "effect"
import { parseDuration } from "../spec/duration.ts"
import { backoffDelay } from "./backoff.ts"
import { Consul } from "./Consul.ts"
import type { ConsulError, Indexed, KvEntry } from "./Consul.ts"

// Other modules took the retry pacing from here before it had its own file.
export { backoffDelay }

export interface WatchOptions {
  /** Blocking wait per request, a Go duration; default "5m" (Consul's own default). */
  readonly wait?: string
}

const DEFAULT_WAIT = "5m"
/** Answers that come back at once without a new index get this many free retries. */
const BURST = 2
const POLL_BASE_MS = 1_000
const ERROR_BASE_MS = 250

/** The decision one answer leads to, kept pure so the rules can be tested without a server. */
export interface WatchState {
  /** Index to send next (0: non-blocking). */
  readonly requestIndex: number
  /** Index of the last emitted result; undefined before the first. */
  readonly emittedIndex: number | undefined
  /** Consecutive answers that came back without a new index. */
  readonly idleStreak: number
}

export const initialWatchState: WatchState = { requestIndex: 0, emittedIndex: undefined, idleStreak: 0 }

export interface WatchStep {
  readonly state: WatchState
  readonly emit: boolean
  /** Pause before the next request, in ms (the anti-spin rate limit). */
  readonly delayMs: number
}

/**
 * `blocked` says the server held the request for a good part of the wait: an
 * unchanged answer after a real wait is normal, only quick ones count as spinning.
 */
export const nextWatchStep = (state: WatchState, index: number, blocked: boolean): WatchStep => {
  const wentBackwards = index < state.requestIndex
  // A changed index is news, whichever way it moved (after a reset it may be lower).
  const emit = state.emittedIndex === undefined || index !== state.emittedIndex
  const idleStreak = emit || blocked ? 0 : state.idleStreak + 1
  const delayMs = idleStreak <= BURST ? 0 : backoffDelay(idleStreak - BURST - 1, POLL_BASE_MS)
  return {
    state: {
      requestIndex: wentBackwards ? 0 : Math.max(1, index),
      emittedIndex: emit ? index : state.emittedIndex,
      idleStreak
    },
    emit,
    delayMs
  }
}

/**
 * Repeats `read` as a blocking query and emits its results by the rules above. `same`
 * can suppress an emission whose content did not change (a missing key's index is
 * the whole KV table's, so it moves on every write anywhere).
 */
export const watchBlocking = <A>(
  describe: string,
  wait: string,
  read: (index: number, wait: string) => Effect.Effect<Indexed<A>, ConsulError, Consul>,
  same: (previous: A, next: A) => boolean = () => false
): Stream.Stream<Indexed<A>, never, Consul> =>
  Stream.suspend(() => {
    // Fresh state per run, so one stream value can be run more than once.
    let state = initialWatchState
    let failures = 0
    let last: { readonly value: A } | undefined
    let startedAt = 0
    const waitMs = parseDuration(wait) ?? 5 * 60_000
    const step: Effect.Effect<Indexed<A>, never, Consul> = Effect.suspend(() => {
      startedAt = Date.now()
      return read(state.requestIndex, wait)
    }).pipe(
      Effect.matchEffect({
        onFailure: (error) => {
          const delayMs = backoffDelay(failures++, ERROR_BASE_MS)
          return Effect.logWarning(`consul watch ${describe}: ${error.message}; retrying in ${Math.round(delayMs)} ms`)
            .pipe(
              Effect.andThen(Effect.sleep(delayMs)),
              Effect.andThen(step)
            )
        },
        onSuccess: (result) => {
          failures = 0
          const blocked = state.requestIndex > 0 && Date.now() - startedAt >= waitMs / 2
          const next = nextWatchStep(state, result.index, blocked)
          state = next.state
          if (next.emit && !(last !== undefined && same(last.value, result.value))) {
            last = { value: result.value }
            return Effect.succeed(result)
          }
          return (next.delayMs > 0 ? Effect.sleep(next.delayMs) : Effect.void).pipe(Effect.andThen(step))
        }
      })
    )
    return Stream.fromEffectRepeat(step)
  })

/** Every entry under `prefix`, re-emitted whenever the prefix's index moves. */
export const watchPrefix = (
  prefix: string,
  options: WatchOptions = {}
): Stream.Stream<Indexed<ReadonlyArray<KvEntry>>, never, Consul> => {
  return watchBlocking(
    `prefix ${prefix}`,
    options.wait ?? DEFAULT_WAIT,
    (index, wait) => Consul.use((c) => c.list(prefix, { index, wait }))
  )
}

/**
 * One key, re-emitted when its index moves. While the key is missing Consul reports
 * the whole KV table's index, so repeated "still missing" answers are not emitted.
 */
export const watchKey = (
  key: string,
  options: WatchOptions = {}
): Stream.Stream<Indexed<KvEntry | undefined>, never, Consul> => {
  return watchBlocking(
    `key ${key}`,
    options.wait ?? DEFAULT_WAIT,
    (index, wait) => Consul.use((c) => c.get(key, { index, wait })),
    (previous, next) => previous === undefined && next === undefined
  )
}
