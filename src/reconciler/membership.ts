/**
 * Membership: `sacar/_nodes/<node>` says this node is alive. It is held by a session
 * with Behavior `delete` and a TTL the reconciler renews, so a node that dies drops
 * out of the expected set by itself. When the session is lost (Consul restarted, a
 * long pause, someone deleted the key) the node registers again with a new one; the
 * session is destroyed when the reconciler stops, which removes the key at once.
 *
 * A key still held by a session named for this same node is a previous run of this
 * reconciler that died (kill -9, a reboot): its session is destroyed instead of
 * waiting out its TTL.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { acquireRetry, sessionTermRetry } from "../common/retry.ts"
import { nowIso } from "../common/time.ts"
import { SACAR_VERSION } from "../common/version.ts"
import { Consul } from "../consul/consul.ts"
import { watchLockLost } from "../consul/lock.ts"
import { openSession } from "../consul/session.ts"
import { encodeDocument } from "../spec/decode.ts"
import { NodeRegistration } from "../spec/documents.ts"
import type { Keys } from "../spec/keys.ts"

export const REGISTRATION_TTL = "15s"

/**
 * How the registration key is watched. Losing Consul is the session's to notice (it is
 * renewed every TTL/2 and presumed lost a TTL after its last good renewal); the watch
 * only has to see the key deleted or taken, which a blocking read sees at once. So it
 * blocks for Consul's default 5 minutes, and may go unconfirmed for two of them:
 * confirming it every TTL/2 cost every node one consistent read per 7.5 s, a third of
 * what an idle node asks of Consul.
 */
const REGISTRATION_WATCH = { wait: "5m", unconfirmedForMs: 10 * 60_000 }

/** The name every session this node opens carries, so a successor can recognise it. */
export const sessionName = (purpose: string, node: string) => `sacar ${purpose} on ${node}`

/** One try at taking `key` for `sessionId`; a key held by a dead predecessor's session is freed. */
const tryAcquire = (key: string, value: string, sessionId: string, ownName: string) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    if (yield* consul.put(key, value, { acquire: sessionId })) return "acquired" as const
    const { value: entry } = yield* consul.get(key)
    const holder = entry?.session
    if (holder === undefined) return "lock-delay" as const
    if (holder !== sessionId) {
      const info = yield* consul.sessionInfo(holder)
      if (info?.name === ownName) {
        yield* Effect.logInfo(`${key} is held by session ${holder} of an earlier run of this node; destroying it`)
        yield* consul.destroySession(holder)
        return "predecessor-freed" as const
      }
      if (info !== undefined) {
        yield* Effect.logWarning(
          `${key} is held by session ${holder} (${info.name}): is another reconciler running with this SACAR_NODE?`
        )
      }
    }
    return "held" as const
  })

/** Takes `key` for `sessionId`, trying again on `acquireRetry` until it is taken. */
export const acquireForNode = (key: string, value: string, sessionId: string, ownName: string) =>
  tryAcquire(key, value, sessionId, ownName).pipe(Effect.repeat(acquireRetry), Effect.asVoid)

export interface MembershipOptions {
  readonly keys: Keys
  readonly node: string
  readonly root: string
  readonly pythons: ReadonlyArray<string>
  readonly ttl?: string
}

/** Starts keeping the registration, in the background, for the life of the enclosing scope. */
export const keepRegistered = (options: MembershipOptions): Effect.Effect<void, never, Consul | Scope.Scope> =>
  Effect.flatMap(nowIso, (startedAt) => registerSince(options, startedAt))

const registerSince = (
  options: MembershipOptions,
  startedAt: string
): Effect.Effect<void, never, Consul | Scope.Scope> => {
  const key = options.keys.node(options.node)
  const name = sessionName("reconciler", options.node)
  const registration = encodeDocument(NodeRegistration, {
    node: options.node,
    version: SACAR_VERSION,
    startedAt,
    root: options.root,
    pythons: options.pythons
  })
  const once = Effect.scoped(
    Effect.gen(function*() {
      const ttl = options.ttl ?? REGISTRATION_TTL
      const session = yield* openSession({ name, ttl, behavior: "delete", lockDelay: "0s" })
      yield* acquireForNode(key, registration, session.id, name)
      yield* Effect.logInfo(`registered ${key}`)
      const reason = yield* Effect.raceFirst(
        session.lost,
        watchLockLost(key, session.id, REGISTRATION_WATCH)
      )
      yield* Effect.logWarning(`registration lost (${reason}); registering again`)
    })
  )
  // A term that ended by losing the registration starts the next at once (and the
  // backoff afresh); one that failed waits on sessionTermRetry.
  return once.pipe(
    Effect.tapError((error) => Effect.logWarning(`cannot register ${key}: ${error.message}; retrying`)),
    Effect.retry(sessionTermRetry),
    Effect.forever,
    Effect.forkScoped,
    Effect.asVoid
  )
}
