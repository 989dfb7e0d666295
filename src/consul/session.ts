/**
 * A Consul session tied to a Scope: created now, renewed every TTL/2 by a fiber of
 * that scope, destroyed (best-effort, bounded) when the scope closes.
 *
 * Loss is judged by the session's TTL, not by a request timeout: Consul may invalidate
 * a session as early as one TTL after the last renew it received (its timer runs for
 * TTL x 2, and servers may be ahead of us), so every renew is bounded by the time the
 * session has left, and once a TTL has passed since the last good renewal `lost`
 * completes, whatever the request in flight is doing. A renew answered "not found"
 * means the session is gone. The renewal follows the TTL Consul returns (a server
 * may run it with a larger one than was asked for). Holders of locks under this
 * session race their work against `lost` and stop acting as holders.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { SESSION_RENEW_RETRY_MS } from "../common/retry.ts"
import { parseDuration } from "../spec/duration.ts"
import { Consul } from "./consul.ts"
import type { ConsulError, SessionOptions } from "./consul.ts"

export interface ManagedSession {
  readonly id: string
  /** Completes (with the reason) once the session is known or presumed gone; never fails. */
  readonly lost: Effect.Effect<string>
}

const DESTROY_WITHIN = "5 seconds"

/** Creates the session and keeps it alive for the life of the enclosing Scope. */
export const openSession = (
  options: SessionOptions
): Effect.Effect<ManagedSession, ConsulError, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const askedTtlMs = parseDuration(options.ttl)
    // The TTL the session is created with: the caller's, raised to SACAR_SESSION_TTL_MIN.
    const requestedTtlMs = askedTtlMs !== undefined && askedTtlMs > 0
      ? Math.max(askedTtlMs, consul.sessionTtlMinMs ?? 0)
      : askedTtlMs
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
    const name = `session ${id} (${options.name})`
    const lost = yield* Deferred.make<string>()
    if (requestedTtlMs === undefined || requestedTtlMs <= 0) return { id, lost: Deferred.await(lost) }

    const renewLoop = Effect.gen(function*() {
      // Until Consul says otherwise the TTL is the one asked for; a larger one answered
      // by a renew (SACAR_SESSION_TTL_MIN, a server's own minimum) is taken from then on.
      let ttlMs = requestedTtlMs
      let lastGood = yield* Clock.currentTimeMillis
      let delayMs = ttlMs / 2
      // A loop rather than Effect.repeat with a Schedule: each pause is decided by the
      // answer before it (the TTL Consul returned, the time the session has left), state
      // a Schedule would only carry back in. It sleeps through Clock (TestClock-tested).
      while (true) {
        yield* Effect.sleep(delayMs)
        const leftMs = lastGood + ttlMs - (yield* Clock.currentTimeMillis)
        if (leftMs <= 0) return `${name} was not renewed within its TTL (${ttlMs / 1000}s): presumed expired`
        const result = yield* Effect.result(
          consul.renewSession(id).pipe(
            Effect.timeoutOrElse({
              duration: leftMs,
              orElse: () => Effect.succeed("no answer" as const)
            })
          )
        )
        const answer = result._tag === "Success" ? result.success : "no answer"
        if (answer === undefined) return `${name} is gone (expired or destroyed)`
        if (answer !== "no answer") {
          lastGood = yield* Clock.currentTimeMillis
          const answered = parseDuration(answer)
          if (answered !== undefined && answered > 0) ttlMs = answered
          delayMs = ttlMs / 2
          continue
        }
        const why = result._tag === "Failure" ? result.failure.message : `no answer within the ${leftMs} ms it had left`
        const remainingMs = lastGood + ttlMs - (yield* Clock.currentTimeMillis)
        if (remainingMs <= 0) return `${name} could not be renewed within its TTL (${ttlMs / 1000}s): ${why}`
        yield* Effect.logWarning(`consul ${name}: renew failed, retrying: ${why}`)
        delayMs = Math.min(SESSION_RENEW_RETRY_MS, remainingMs)
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
