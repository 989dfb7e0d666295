/**
 * The reconciler's loop: blocking-query watches on the desired state of the apps this
 * node serves (watch-desired.ts) wake a reconcile; the reconcile reads desired state
 * (the latest entries those watches hold) and observed state (each served app's disk
 * and its in-memory status and work in flight), asks `plan` what to do, and hands the
 * actions to the app runtimes (actions.ts), which carry them out. Wake-ups carry no
 * meaning and coalesce; work finishing and a periodic tick wake it too, so whatever
 * was missed is picked up on the next pass.
 *
 * Nothing an app does can end the loop: every action is isolated and logged, and a
 * pass that fails is tried again after a second.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { Python } from "../python/python.ts"
import type { AppConfig } from "../spec/documents.ts"
import { makeKeys } from "../spec/keys.ts"
import type { DecodeMemo } from "../spec/tree.ts"
import { makeAppRuntimes } from "./actions.ts"
import type { Services } from "./actions.ts"
import { observeDisk } from "./disk.ts"
import { keepRegistered } from "./membership.ts"
import { plan } from "./plan.ts"
import type { AppObserved, NodeDesired } from "./plan.ts"
import { readDesired } from "./read-desired.ts"
import type { ReconcilerSettings } from "./settings.ts"
import { watchDesired } from "./watch-desired.ts"

/** Disk can change behind the loop's back (an operator, a crash's leftovers). */
const RESYNC_EVERY = "15 seconds"
// Consul's own default: an idle watch costs one request per 5 minutes.
const WATCH_WAIT = "5m"
/** A pass that failed (Consul unreadable, a disk error) is run again after this pause. */
const PASS_RETRY = Schedule.spaced("1 second")

export interface LoopOptions {
  readonly settings: ReconcilerSettings
  /** For tests; the default coalesces status writes to one per 400 ms per app. */
  readonly statusIntervalMs?: number
  /** For tests; how often new apps are looked for (default 10 s). */
  readonly discoverEveryMs?: number
}

const describeCause = (cause: Cause.Cause<unknown>) => Cause.pretty(cause).split("\n")[0] ?? "unknown error"

/** Runs until interrupted. Needs a Scope: closing it stops everything and deregisters. */
export const runReconciler = (options: LoopOptions): Effect.Effect<never, never, Services | Scope.Scope> =>
  Effect.gen(function*() {
    const { settings } = options
    const { node, root } = settings
    const keys = makeKeys(settings.prefix)

    const pythons = yield* Python.use((p) => p.listVersions(settings.python))
    yield* keepRegistered({ keys, node, root, pythons })
    yield* Effect.logInfo(`reconciler ${node} started`, {
      root,
      prefix: settings.prefix,
      concurrency: settings.concurrency,
      pythons,
      // Who the app's code runs as (SACAR_RUN_AS), so the log says it when permissions puzzle someone.
      runAs: settings.runAs === undefined
        ? "the reconciler's user"
        : `${settings.runAs.name} (uid ${settings.runAs.uid}, gid ${settings.runAs.gid})`
    })

    const wake = yield* Queue.sliding<void>(1)
    const poke = Queue.offer(wake, undefined).pipe(Effect.asVoid)
    const lastGood = new Map<string, AppConfig>()
    const decoded: DecodeMemo = new Map()

    const desiredWatch = yield* watchDesired({
      keys,
      node,
      changed: poke,
      watch: { wait: WATCH_WAIT },
      ...(options.discoverEveryMs === undefined ? {} : { discoverEveryMs: options.discoverEveryMs })
    })
    yield* Effect.forever(Effect.sleep(RESYNC_EVERY).pipe(Effect.andThen(poke))).pipe(Effect.forkScoped)

    const runtimes = yield* makeAppRuntimes({
      settings,
      keys,
      lastGood,
      poke,
      statusIntervalMs: options.statusIntervalMs
    })

    // ---------------------------------------------------------------- one pass

    const reconcile = Effect.gen(function*() {
      const entries = yield* desiredWatch.entries
      if (entries === undefined) return
      const snapshot = readDesired(keys, node, entries, lastGood, decoded)
      const desired: NodeDesired = {
        node,
        concurrency: settings.concurrency,
        apps: snapshot.apps,
        now: yield* Clock.currentTimeMillis
      }
      const observed = new Map<string, AppObserved>()
      for (const runtime of runtimes.apps.values()) {
        observed.set(runtime.app, {
          disk: yield* observeDisk(root, runtime.app),
          status: yield* runtime.status.get,
          preparing: runtime.preparing,
          retrying: runtime.retrying,
          deploying: runtime.deploying
        })
      }
      const actions = plan(desired, { apps: observed })
      for (const action of actions) {
        if (action._tag !== "SetLinks" && action._tag !== "Queue")
          yield* Effect.logDebug(`action ${action._tag}`, action)
        yield* runtimes.execute(action, snapshot).pipe(
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.failCause(cause)
              : Effect.logError(`${action._tag} for ${action.app} failed: ${describeCause(cause)}`, Cause.pretty(cause))
          )
        )
      }
    })

    // A failed pass (defects included) is logged and retried; interruption ends the loop.
    const pass = reconcile.pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause)
          : Effect.logError(`reconcile failed: ${describeCause(cause)}`, Cause.pretty(cause)).pipe(
            Effect.andThen(Effect.fail(cause))
          )
      ),
      Effect.retry(PASS_RETRY),
      Effect.orDie
    )
    return yield* Effect.forever(Queue.take(wake).pipe(Effect.andThen(pass)))
  })
