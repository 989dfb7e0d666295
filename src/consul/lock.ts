/**
 * A lock laid out exactly like the Go api's `Lock` (api/lock.go), so `consul lock`
 * (which locks `<prefix>/.lock`), `consul kv get -detailed` and Sacar all agree on
 * who holds it: the key carries flags 3304740253564472344, is taken with
 * `?acquire=<session>&flags=…` and given back with `?release=<session>`, and
 * whoever's session is on the key holds it.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { consulRetry } from "../common/retry.ts"
import { parseDuration } from "../spec/duration.ts"
import { Consul, ConsulUnavailable, isTransientConsulError } from "./consul.ts"
import type { ConsulError, KvEntry } from "./consul.ts"

/** api.LockFlagValue, 0x2ddccbc058a50c18. */
export const LOCK_FLAGS = "3304740253564472344"

/** The key exists but is not a lock (its flags say something else owns it, e.g. a semaphore). */
export class LockConflict extends Data.TaggedError("LockConflict")<{
  readonly key: string
  readonly flags: string
  readonly message: string
}> {}

export interface LockOptions {
  /** The value written with the lock (e.g. who holds it); default empty. */
  readonly value?: string
  /** Blocking wait while someone else holds it; default "15s" as in the Go api. */
  readonly wait?: string
  /** Pause when an acquire is refused by lock-delay; default 5000 ms as in the Go api. */
  readonly lockDelayRetryMs?: number
}

const conflict = (key: string, entry: KvEntry) =>
  new LockConflict({
    key,
    flags: entry.flags,
    message:
      `${key} is not a lock: its flags are ${entry.flags}, a lock's are ${LOCK_FLAGS} (is it a semaphore's .lock?)`
  })

const checkFlags = (key: string, entry: KvEntry | undefined) =>
  entry !== undefined && entry.flags !== LOCK_FLAGS && entry.flags !== "0"
    ? Effect.fail(conflict(key, entry))
    : Effect.void

/**
 * One attempt: true when `sessionId` now holds `key` (or already did), false when
 * another session holds it or a lock-delay refused it.
 */
export const tryLock = (
  key: string,
  sessionId: string,
  options: Pick<LockOptions, "value"> = {}
): Effect.Effect<boolean, ConsulError | LockConflict, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const { value: entry } = yield* consul.get(key)
    yield* checkFlags(key, entry)
    if (entry?.session === sessionId) return true
    if (entry?.session !== undefined) return false
    return yield* consul.put(key, options.value ?? "", { acquire: sessionId, flags: LOCK_FLAGS })
  })

/**
 * Blocks until `sessionId` holds `key`: waits on the key while another session holds
 * it, sleeps through lock-delays, retries Consul outages with backoff (logged).
 * Fails on a request error (e.g. the session no longer exists) or a flags conflict.
 * Interrupting it aborts the blocking read in flight.
 */
export const acquireLock = (
  key: string,
  sessionId: string,
  options: LockOptions = {}
): Effect.Effect<void, ConsulError | LockConflict, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const wait = options.wait ?? "15s"
    const lockDelayRetryMs = options.lockDelayRetryMs ?? 5_000
    let index = 0
    const attempt = Effect.gen(function*() {
      const read = yield* consul.get(key, { index, wait })
      // Index rules as in watch.ts: never backwards, never 0 once we have one.
      index = read.index < index ? 0 : Math.max(1, read.index)
      const entry = read.value
      yield* checkFlags(key, entry)
      if (entry?.session === sessionId) return "held" as const
      if (entry?.session !== undefined) return "wait" as const
      if (yield* consul.put(key, options.value ?? "", { acquire: sessionId, flags: LOCK_FLAGS }))
        return "held" as const
      // Refused while free: either someone took it just now, or a lock-delay is on.
      const again = yield* consul.get(key)
      if (again.value?.session === sessionId) return "held" as const
      if (again.value?.session !== undefined) {
        index = again.index
        return "wait" as const
      }
      return "delay" as const
    })
    yield* attempt.pipe(
      Effect.tapError((error) =>
        isTransientConsulError(error)
          ? Effect.logWarning(`consul lock ${key}: ${error.message}; retrying`)
          : Effect.void
      ),
      Effect.retry({ schedule: consulRetry, while: isTransientConsulError }),
      Effect.tap((outcome) =>
        outcome === "delay"
          ? Effect.sync(() => {
            index = 0
          }).pipe(Effect.andThen(Effect.sleep(lockDelayRetryMs)))
          : Effect.void
      ),
      Effect.repeat({ until: (outcome) => outcome === "held" })
    )
  })

/**
 * Gives the lock back (`?release`), keeping the value it holds unless `value` is
 * given. false when `sessionId` did not hold it.
 */
export const releaseLock = (
  key: string,
  sessionId: string,
  options: Pick<LockOptions, "value"> = {}
): Effect.Effect<boolean, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const { value: entry } = yield* consul.get(key)
    if (entry?.session !== sessionId) return false
    return yield* consul.put(key, options.value ?? entry.value ?? "", { release: sessionId, flags: LOCK_FLAGS })
  })

export interface LockLostOptions {
  /** Longest blocking wait per read; default "15s" (shortened to fit `unconfirmedForMs`). */
  readonly wait?: string
  /**
   * How long Consul may leave ownership unconfirmed before the lock is presumed lost
   * (nobody can say it is still ours); default 15000 ms, the Go api's session TTL.
   * Pass the holder's session TTL: Consul may invalidate the session one TTL after
   * its last renew, so a holder that waited longer could act after losing the lock.
   */
  readonly unconfirmedForMs?: number
}

/**
 * Completes (with a reason) when `sessionId` no longer holds `key`: the key's session
 * changed or it was deleted, or Consul could not confirm ownership for
 * `unconfirmedForMs`. Reads are `?consistent`, as the Go api's monitor does. Each
 * blocking read waits at most half that time and is abandoned when it overruns its
 * wait, so a read that hangs (a Consul that stopped answering) is noticed within
 * `unconfirmedForMs`, not after the request timeout. Never fails.
 */
export const watchLockLost = (
  key: string,
  sessionId: string,
  options: LockLostOptions = {}
): Effect.Effect<string, never, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const unconfirmedForMs = options.unconfirmedForMs ?? 15_000
    const waitMs = Math.min(parseDuration(options.wait ?? "15s") ?? 15_000, Math.floor(unconfirmedForMs / 2))
    const wait = `${Math.max(1, waitMs)}ms`
    // Consul holds a blocking read for wait + up to wait/16; past that (and a little
    // for the network) silence means trouble.
    const readWithinMs = Math.ceil(waitMs * 17 / 16) + 500
    let index = 0
    let confirmedAt = yield* Clock.currentTimeMillis
    const leftMs = Effect.map(Clock.currentTimeMillis, (now) => confirmedAt + unconfirmedForMs - now)
    // Still ours (undefined) or the reason it is not.
    const confirm = Effect.gen(function*() {
      const leftMs = confirmedAt + unconfirmedForMs - (yield* Clock.currentTimeMillis)
      const read = yield* consul.get(key, { index, wait, consistent: true }).pipe(
        Effect.timeoutOrElse({
          duration: Math.max(leftMs, readWithinMs),
          orElse: () =>
            Effect.fail(
              new ConsulUnavailable({
                address: consul.address,
                operation: `kv get ${key}`,
                message: "blocking read overran its wait"
              })
            )
        })
      )
      const holder = read.value?.session
      if (holder !== sessionId) {
        return read.value === undefined
          ? `lock ${key} was deleted`
          : holder === undefined
          ? `lock ${key} was released`
          : `lock ${key} is now held by session ${holder}`
      }
      confirmedAt = yield* Clock.currentTimeMillis
      index = read.index < index ? 0 : Math.max(1, read.index)
      return undefined
    })
    // Any failed read is tried again, never sleeping past the time ownership may stay
    // unconfirmed; once that has passed the failure is the answer.
    const reason = yield* confirm.pipe(
      Effect.retry({
        schedule: consulRetry.pipe(
          Schedule.modifyDelay(({ duration }) =>
            Effect.map(leftMs, (left) => Math.min(Duration.toMillis(duration), Math.max(0, left)))
          )
        ),
        while: (error) =>
          Effect.map(leftMs, (left) => left > 0).pipe(
            Effect.tap((again) =>
              again
                ? Effect.logWarning(`consul lock ${key}: monitor read failed, retrying: ${error.message}`)
                : Effect.void
            )
          )
      }),
      Effect.repeat({ until: (reason) => reason !== undefined }),
      Effect.catch((error) =>
        Effect.succeed(
          `lock ${key} could not be confirmed for ${Math.round(unconfirmedForMs / 1000)}s: ${error.message}`
        )
      )
    )
    return reason ?? `lock ${key}: no reason`
  })
