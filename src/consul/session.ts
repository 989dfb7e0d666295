/**
 * A Consul session tied to a Scope: created now, renewed every TTL/2 by a fiber of
 * that scope, destroyed (best-effort, bounded) when the scope closes. The renewal
 * follows the Go api's RenewPeriodic: failures are retried every second until a TTL
 * has passed since the last good renewal, and a renew answered "not found" means the
 * session is gone; either way `lost` completes, so holders of locks under this
 * session can stop acting as holders.
 */
import { Deferred, Effect } from "effect"
import type { Scope } from "effect"
import { parseDuration } from "../spec/duration.ts"
import { Consul } from "./Consul.ts"
import type { ConsulError, SessionOptions } from "./Consul.ts"

export interface ManagedSession {
  readonly id: string
  /** Completes (with the reason) once the session is known or presumed gone; never fails. */
  readonly lost: Effect.Effect<string>
}

const RETRY_MS = 1_000
const DESTROY_WITHIN = "5 seconds"

/** Creates the session and keeps it alive for the life of the enclosing Scope. */
export const openSession = (
  options: SessionOptions
): Effect.Effect<ManagedSession, ConsulError, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const ttlMs = parseDuration(options.ttl)
    const id = yield* Effect.acquireRelease(
      consul.createSession(options),
      (id) =>
        consul.destroySession(id).pipe(
          Effect.timeout(DESTROY_WITHIN),
          Effect.catch((error) =>
            Effect.logWarning(
              `consul session ${id} (${options.name}): destroy failed, it will expire by its TTL: ${error.message}`
            )
          )
        )
    )
    const lost = yield* Deferred.make<string>()
    if (ttlMs === undefined) return { id, lost: Deferred.await(lost) }

    const renewEveryMs = ttlMs / 2
    const renewLoop = Effect.gen(function*() {
      let lastGood = Date.now()
      let delayMs = renewEveryMs
      while (true) {
        yield* Effect.sleep(delayMs)
        const result = yield* Effect.result(consul.renewSession(id))
        if (result._tag === "Success") {
          if (!result.success) return `session ${id} (${options.name}) is gone (expired or destroyed)`
          lastGood = Date.now()
          delayMs = renewEveryMs
          continue
        }
        if (Date.now() - lastGood >= ttlMs) {
          return `session ${id} (${options.name}) could not be renewed for ${options.ttl}: ${result.failure.message}`
        }
        yield* Effect.logWarning(
          `consul session ${id} (${options.name}): renew failed, retrying: ${result.failure.message}`
        )
        delayMs = RETRY_MS
      }
    })
    yield* renewLoop.pipe(
      Effect.flatMap((reason) =>
        Effect.logWarning(`consul ${reason}`).pipe(Effect.andThen(Deferred.succeed(lost, reason)))
      ),
      Effect.forkScoped
    )
    return { id, lost: Deferred.await(lost) }
  })

/** The session id alone, for callers that do not watch for loss. */
export const session = (options: SessionOptions): Effect.Effect<string, ConsulError, Consul | Scope.Scope> =>
  Effect.map(openSession(options), (s) => s.id)
