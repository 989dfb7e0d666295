/**
 * Leader election over `<prefix>/_controller/leader`, a Go-api layout lock held by a
 * Consul session. `whileLeader(work)` runs `work` only while this replica holds the
 * lock and interrupts it the moment the lock is lost (session gone, key taken or
 * deleted, or Consul unable to confirm ownership), then queues for the lock again.
 *
 * When the leader dies without letting go, its session expires after the TTL and
 * Consul keeps the key unlockable for the lock-delay; the next replica takes over
 * within TTL + lock-delay. A leader that stops cleanly releases the lock first, which
 * skips the lock-delay.
 */
import * as Effect from "effect/Effect"
import { hostname } from "node:os"
import { sessionTermRetry } from "../../common/retry.ts"
import { nowIso } from "../../common/time.ts"
import { Consul } from "../../consul/consul.ts"
import { acquireLock, releaseLock, watchLockLost } from "../../consul/lock.ts"
import { openSession } from "../../consul/session.ts"
import { parseDuration } from "../../spec/duration.ts"

export interface LeaderOptions {
  readonly key: string
  /** Session TTL, a Go duration (Consul accepts 10s to 24h). */
  readonly ttl: string
  /** Consul's lock-delay after a holder's session is invalidated. */
  readonly lockDelay: string
  /** Written as the lock's value, for `consul kv get` and logs. */
  readonly identity: string
  readonly onChange?: ((leading: boolean) => void) | undefined
}

export const DEFAULT_LEADER_TTL = "15s"
export const DEFAULT_LOCK_DELAY = "15s"

export const defaultIdentity = (): string => `${hostname()}:${process.pid}`

/** One term: wait for the lock, run `work` until the lock is lost, give it back. */
const term = <R>(options: LeaderOptions, work: Effect.Effect<never, never, R>) =>
  Effect.scoped(
    Effect.gen(function*() {
      const session = yield* openSession({
        name: `sacar controller leader (${options.identity})`,
        ttl: options.ttl,
        behavior: "release",
        lockDelay: options.lockDelay
      })
      const value = JSON.stringify({ holder: options.identity, session: session.id, since: yield* nowIso })
      const delayMs = parseDuration(options.lockDelay) ?? 15_000
      yield* acquireLock(options.key, session.id, {
        value,
        lockDelayRetryMs: Math.min(5_000, Math.max(250, delayMs / 4))
      })
      // Runs before the session is destroyed: an explicit release skips the lock-delay.
      yield* Effect.addFinalizer(() =>
        releaseLock(options.key, session.id).pipe(Effect.timeout("3 seconds"), Effect.ignoreCause)
      )
      yield* Effect.logInfo(`leader: this replica (${options.identity}) now reports to GitHub`)
      options.onChange?.(true)
      const reason = yield* Effect.raceFirst(
        work,
        Effect.raceFirst(
          session.lost,
          watchLockLost(options.key, session.id, { unconfirmedForMs: parseDuration(options.ttl) ?? 15_000 })
        )
      )
      yield* Effect.logWarning(`leader: lost the lock (${reason}); reporting stopped`)
    }).pipe(Effect.ensuring(Effect.sync(() => options.onChange?.(false))))
  )

/** Runs `work` whenever this replica leads; never returns. */
export const whileLeader = <R>(
  options: LeaderOptions,
  work: Effect.Effect<never, never, R>
): Effect.Effect<never, never, R | Consul> =>
  term(options, work).pipe(
    Effect.tapError((error) => Effect.logWarning(`leader: ${error.message}; trying again`)),
    Effect.retry(sessionTermRetry),
    Effect.orDie, // sessionTermRetry never gives up
    Effect.forever
  )
