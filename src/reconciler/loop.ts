/**
 * The reconciler's loop: blocking-query watches on the desired state of the apps this
 * node serves (desired-watch.ts) wake a reconcile; the reconcile reads desired state
 * (the latest entries those watches hold) and observed state (each served app's disk and its in-memory status and work in
 * flight), asks `plan` what to do, and carries the actions out. Wake-ups carry no
 * meaning and coalesce; work finishing and a periodic tick wake it too, so whatever
 * was missed is picked up on the next pass.
 *
 * Each served app has its own scope holding its status writer and its fibers
 * (preparations, a deploy); closing it (the app is no longer served, or the process
 * stops) interrupts them, which kills their child processes, and flushes the status.
 * Nothing an app does can end the loop: every action is isolated and logged.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import type { ArtifactStore } from "../artifacts/store.ts"
import { Consul } from "../consul/Consul.ts"
import { Python } from "../python/python.ts"
import type { AppConfig, NodeStatus } from "../spec/documents.ts"
import { makeKeys } from "../spec/keys.ts"
import type { Keys } from "../spec/keys.ts"
import { recordHalt, runDeploy } from "./deploy.ts"
import { watchDesired } from "./desired-watch.ts"
import { readSnapshot } from "./desired.ts"
import type { Snapshot } from "./desired.ts"
import { appDir, observeDisk, pruneUnserved, removeRelease, tidyLinks } from "./disk.ts"
import { keepRegistered, sessionName } from "./membership.ts"
import { plan } from "./plan.ts"
import type { Action, AppObserved, NodeDesired, Preparing, Retrying, WantedDeploy } from "./plan.ts"
import { nextRetryMs, RETRY_FIRST_MS, runRelease } from "./release.ts"
import { endOrphan, groupFile } from "./scripts.ts"
import type { ReconcilerSettings } from "./settings.ts"
import { emptyStatus, makeStatusWriter } from "./status.ts"
import type { StatusWriter } from "./status.ts"
import { releasePaths } from "./steps/layout.ts"
import { readMarker } from "./steps/markers.ts"

/** Disk can change behind the loop's back (an operator, a crash's leftovers). */
const RESYNC_EVERY = "15 seconds"
// Consul's own default: an idle watch costs one request per 5 minutes.
const WATCH_WAIT = "5m"

interface PreparingFiber extends Preparing {
  readonly fiber: Fiber.Fiber<void>
}

interface AppRuntime {
  readonly app: string
  readonly scope: Scope.Closeable
  readonly status: StatusWriter
  readonly preparing: Map<string, PreparingFiber>
  /** Releases waiting to try again, with the pause to use after their next failure. */
  readonly retrying: Map<string, Retrying & { readonly nextMs: number }>
  deploying: (WantedDeploy & { readonly fiber: Fiber.Fiber<void>; readonly cancelling?: boolean }) | undefined
}

type Services = Consul | ArtifactStore | Python

export interface LoopOptions {
  readonly settings: ReconcilerSettings
  /** For tests; the default coalesces status writes to one per 400 ms per app. */
  readonly statusIntervalMs?: number
  /** For tests; how often new apps are looked for (default 10 s). */
  readonly discoverEveryMs?: number
}

const nowIso = () => new Date().toISOString()

const describeCause = (cause: Cause.Cause<unknown>) => Cause.pretty(cause).split("\n")[0] ?? "unknown error"

/** Sessions of an earlier run of this node still holding deploy slots: free them now. */
const freeDeadSlots = (keys: Keys, app: string, node: string) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const { value: entries } = yield* consul.list(keys.deploySemaphore(app) + "/")
    const own = sessionName("deploy", node)
    for (const entry of entries) {
      if (entry.session === undefined) continue
      const info = yield* consul.sessionInfo(entry.session)
      if (info?.name === own) {
        yield* Effect.logInfo(`freeing deploy slot of an earlier run of this node (session ${entry.session})`)
        yield* consul.destroySession(entry.session)
      }
    }
  }).pipe(Effect.catch((error) => Effect.logWarning(`cannot check ${keys.deploySemaphore(app)}: ${error.message}`)))

/** Runs until interrupted. Needs a Scope: closing it stops everything and deregisters. */
export const runReconciler = (options: LoopOptions): Effect.Effect<never, never, Services | Scope.Scope> =>
  Effect.gen(function*() {
    const { settings } = options
    const { node, root } = settings
    const keys = makeKeys(settings.prefix)
    const consul = yield* Consul
    const mainScope = yield* Effect.scope
    const services = yield* Effect.context<Services>()

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
    const apps = new Map<string, AppRuntime>()

    const desiredWatch = yield* watchDesired({
      keys,
      node,
      changed: poke,
      watch: { wait: WATCH_WAIT },
      ...(options.discoverEveryMs === undefined ? {} : { discoverEveryMs: options.discoverEveryMs })
    })
    yield* Effect.forever(Effect.sleep(RESYNC_EVERY).pipe(Effect.andThen(poke))).pipe(Effect.forkScoped)

    // ---------------------------------------------------------------- actions

    const fork = (runtime: AppRuntime, effect: Effect.Effect<void, never, Services>) =>
      Effect.forkIn(Effect.provideContext(effect, services), runtime.scope)

    const serve = (app: string, snapshot: Snapshot) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(mainScope, "sequential")
        const own = snapshot.ownStatus.get(app)
        const initial: NodeStatus = own ?? emptyStatus(node)
        const status = yield* Scope.provide(scope)(
          makeStatusWriter({
            key: keys.status(app, node),
            initial,
            stored: own !== undefined,
            ...(options.statusIntervalMs === undefined ? {} : { intervalMs: options.statusIntervalMs })
          })
        )
        yield* tidyLinks(root, app)
        // A dead run's scripts must not keep going while this run takes over.
        yield* endOrphan(groupFile(appDir(root, app), "pre-deploy"), "pre-deploy")
        yield* endOrphan(groupFile(appDir(root, app), "deploy"), "deploy")
        yield* freeDeadSlots(keys, app, node)
        apps.set(app, { app, scope, status, preparing: new Map(), retrying: new Map(), deploying: undefined })
        yield* Effect.logInfo(`serving ${app}`)
      })

    const unserve = (runtime: AppRuntime, reason: string) =>
      Effect.gen(function*() {
        apps.delete(runtime.app)
        yield* Scope.close(runtime.scope, Exit.void)
        yield* consul.delete(keys.status(runtime.app, node)).pipe(Effect.ignore)
        yield* pruneUnserved(root, runtime.app).pipe(Effect.catch((e) => Effect.logWarning(e.message)))
        yield* Effect.logInfo(`no longer serving ${runtime.app}: ${reason}`)
      })

    const startPrepare = (runtime: AppRuntime, action: Extract<Action, { _tag: "Prepare" }>) =>
      Effect.gen(function*() {
        const config = lastGood.get(action.app)
        if (config === undefined) return
        const { sha } = action
        const waited = runtime.retrying.get(sha)
        const retryMs = waited !== undefined && waited.specIndex === action.specIndex ? waited.nextMs : RETRY_FIRST_MS
        runtime.retrying.delete(sha)
        const work = runRelease({
          app: action.app,
          sha,
          node,
          root,
          defaultPython: settings.python,
          config,
          spec: action.spec,
          specIndex: action.specIndex,
          attempt: action.attempt,
          status: runtime.status,
          retryMs
        }).pipe(
          Effect.flatMap((outcome) =>
            outcome._tag === "Done" ? Effect.void : Effect.gen(function*() {
              const at = (yield* Clock.currentTimeMillis) + outcome.ms
              runtime.retrying.set(sha, { specIndex: action.specIndex, at, nextMs: nextRetryMs(outcome.ms) })
              // Its time coming is a reason to look again, like any other.
              yield* fork(runtime, Effect.sleep(outcome.ms).pipe(Effect.andThen(poke)))
            })
          ),
          Effect.ensuring(
            Effect.sync(() => {
              const entry = runtime.preparing.get(sha)
              if (entry !== undefined && !entry.cancelling) runtime.preparing.delete(sha)
            }).pipe(Effect.andThen(poke))
          )
        )
        const fiber = yield* fork(runtime, work)
        // Checked and recorded in one synchronous step: a fiber that already ended has
        // run its `ensuring` and must not be recorded as in flight.
        if (fiber.pollUnsafe() === undefined)
          runtime.preparing.set(sha, { fiber, specIndex: action.specIndex, cancelling: false })
      })

    const cancelPrepare = (runtime: AppRuntime, sha: string) =>
      Effect.gen(function*() {
        const entry = runtime.preparing.get(sha)
        if (entry === undefined) return
        runtime.preparing.set(sha, { ...entry, cancelling: true })
        yield* Effect.logInfo(`ReleaseSpec of ${runtime.app} ${sha} deleted: stopping its preparation`)
        yield* fork(
          runtime,
          Effect.gen(function*() {
            yield* Fiber.interrupt(entry.fiber)
            yield* removeRelease(root, runtime.app, sha).pipe(Effect.catch((e) => Effect.logWarning(e.message)))
            yield* runtime.status.update((s) => {
              const { [sha]: _gone, ...releases } = s.releases
              return { ...s, releases }
            })
          }).pipe(Effect.ensuring(Effect.sync(() => runtime.preparing.delete(sha)).pipe(Effect.andThen(poke))))
        )
      })

    const startDeploy = (runtime: AppRuntime, action: Extract<Action, { _tag: "StartDeploy" }>, snapshot: Snapshot) =>
      Effect.gen(function*() {
        const config = lastGood.get(action.app)
        if (config === undefined) return
        const target = { generation: action.generation, sha: action.sha }
        yield* Effect.logInfo(`deploying ${action.app} ${action.sha} (generation ${action.generation})`)
        const fiber = yield* fork(
          runtime,
          runDeploy({
            keys,
            node,
            root,
            app: action.app,
            config,
            ...target,
            force: snapshot.apps.get(action.app)?.deploy?.force === true,
            status: runtime.status
          }).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                if (runtime.deploying?.generation === target.generation) runtime.deploying = undefined
              }).pipe(Effect.andThen(poke))
            )
          )
        )
        if (fiber.pollUnsafe() === undefined) runtime.deploying = { ...target, fiber }
      })

    const setRelease = (runtime: AppRuntime, sha: string, entry: NodeStatus["releases"][string]) =>
      runtime.status.update((s) => ({ ...s, releases: { ...s.releases, [sha]: entry } }))

    const execute = (action: Action, snapshot: Snapshot): Effect.Effect<void, unknown, Services> => {
      if (action._tag === "Serve") return serve(action.app, snapshot)
      const runtime = apps.get(action.app)
      if (runtime === undefined) return Effect.void
      switch (action._tag) {
        case "Unserve":
          return unserve(runtime, action.reason)
        case "SetError":
          return runtime.status.update((s) => {
            const { error: _old, ...rest } = s
            return action.error === undefined ? rest : { ...rest, error: action.error }
          }).pipe(
            Effect.andThen(
              action.error === undefined
                ? Effect.void
                : Effect.logWarning(`${action.app}: ${action.error}`, { app: action.app })
            )
          )
        case "SetLinks":
          return runtime.status.update((s) => ({ ...s, current: action.current, previous: action.previous }))
        case "Prepare":
          return startPrepare(runtime, action)
        case "Queue":
          return setRelease(runtime, action.sha, {
            phase: "pending",
            attempt: action.attempt,
            specIndex: action.specIndex,
            steps: {},
            message: `waiting for a free slot (SACAR_CONCURRENCY ${settings.concurrency})`
          })
        case "AdoptReady":
          return Effect.gen(function*() {
            const marker = (yield* readMarker(releasePaths(root, action.app, action.sha).meta, "ready")) as
              | { readonly message?: string; readonly steps?: Record<string, { ms: number }> }
              | undefined
            const before = (yield* runtime.status.get).releases[action.sha]
            yield* setRelease(runtime, action.sha, {
              phase: "ready",
              attempt: before?.attempt ?? 1,
              specIndex: action.specIndex,
              steps: marker?.steps ?? before?.steps ?? {},
              message: marker?.message ?? "ready (found on disk)",
              ...(before?.startedAt === undefined ? {} : { startedAt: before.startedAt }),
              finishedAt: before?.finishedAt ?? nowIso()
            })
          })
        case "FailRelease":
          return Effect.logWarning(`prepare ${action.app} ${action.sha}: failed: ${action.message}`, {
            app: action.app,
            sha: action.sha
          }).pipe(Effect.andThen(setRelease(runtime, action.sha, {
            phase: "failed",
            attempt: action.attempt,
            specIndex: action.specIndex,
            steps: {},
            message: action.message,
            finishedAt: nowIso()
          })))
        case "Cancel":
          return cancelPrepare(runtime, action.sha)
        case "RemoveRelease":
          return removeRelease(root, action.app, action.sha).pipe(
            Effect.tap(() => Effect.logInfo(`removed release ${action.sha} of ${action.app} from disk`))
          )
        case "CompactFailures":
          return runtime.status.update((s) => {
            const releases = { ...s.releases }
            for (const sha of action.shas) {
              const entry = releases[sha]
              if (entry === undefined) continue
              const { log: _log, startedAt: _startedAt, ...rest } = entry
              releases[sha] = { ...rest, steps: {} }
            }
            return { ...s, releases }
          })
        case "ForgetRelease":
          runtime.retrying.delete(action.sha)
          return runtime.status.update((s) => {
            const { [action.sha]: _gone, ...releases } = s.releases
            return { ...s, releases }
          })
        case "StartDeploy":
          return startDeploy(runtime, action, snapshot)
        case "CancelDeploy": {
          const running = runtime.deploying
          if (running === undefined || running.cancelling === true) return Effect.void
          // Still in flight until its fiber has ended (its own `ensuring` forgets it).
          runtime.deploying = { ...running, cancelling: true }
          // The stopped generation is closed as failed, so it is not resumed on a restart.
          const close = runtime.status.update((s) =>
            s.deploy !== null && s.deploy.generation === action.generation && s.deploy.phase !== "live" &&
              s.deploy.phase !== "failed"
              ? {
                ...s,
                deploy: { ...s.deploy, phase: "failed", message: `stopped: ${action.reason}`, finishedAt: nowIso() }
              }
              : s
          )
          return Effect.logInfo(`stopping deploy generation ${action.generation} of ${action.app}: ${action.reason}`)
            .pipe(
              Effect.andThen(
                fork(runtime, Fiber.interrupt(running.fiber).pipe(Effect.andThen(close), Effect.andThen(poke)))
              ),
              Effect.asVoid
            )
        }
        case "DeployWaiting":
          return runtime.status.update((s) => ({
            ...s,
            deploy: {
              generation: action.generation,
              sha: action.sha,
              phase: "waiting",
              message: action.message,
              startedAt: nowIso()
            }
          }))
        case "AdoptLive":
          return runtime.status.update((s) => ({
            ...s,
            deploy: {
              generation: action.generation,
              sha: action.sha,
              phase: "live",
              message: "already live in current when this node began serving the app; bin/deploy not run again",
              finishedAt: nowIso()
            }
          })).pipe(
            Effect.andThen(runtime.status.flush),
            Effect.andThen(
              Effect.logInfo(
                `deploy ${action.app} ${action.sha} generation ${action.generation}: live (already current)`,
                { app: action.app, sha: action.sha, generation: action.generation }
              )
            )
          )
        case "FailDeploy":
          return Effect.logWarning(
            `deploy ${action.app} ${action.sha} generation ${action.generation}: failed: ${action.message}`,
            { app: action.app, sha: action.sha, generation: action.generation }
          ).pipe(
            Effect.andThen(recordHalt(keys, action.app, action.generation, node, action.message)),
            Effect.andThen(runtime.status.update((s) => ({
              ...s,
              deploy: {
                generation: action.generation,
                sha: action.sha,
                phase: "failed",
                message: action.message,
                finishedAt: nowIso()
              }
            }))),
            Effect.andThen(runtime.status.flush)
          )
      }
    }

    // ---------------------------------------------------------------- one pass

    const reconcile = Effect.gen(function*() {
      const entries = yield* desiredWatch.entries
      if (entries === undefined) return
      const snapshot = readSnapshot(keys, node, entries, lastGood)
      const desired: NodeDesired = {
        node,
        concurrency: settings.concurrency,
        apps: snapshot.apps,
        now: yield* Clock.currentTimeMillis
      }
      const observed = new Map<string, AppObserved>()
      for (const runtime of apps.values()) {
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
        yield* execute(action, snapshot).pipe(
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.failCause(cause)
              : Effect.logError(`${action._tag} for ${action.app} failed: ${describeCause(cause)}`, Cause.pretty(cause))
          )
        )
      }
    })

    while (true) {
      yield* Queue.take(wake)
      const result = yield* Effect.exit(reconcile)
      if (Exit.isFailure(result)) {
        if (Cause.hasInterruptsOnly(result.cause)) return yield* Effect.interrupt
        yield* Effect.logError(`reconcile failed: ${describeCause(result.cause)}`, Cause.pretty(result.cause))
        yield* Effect.sleep(1000)
        yield* poke
      }
    }
  })
