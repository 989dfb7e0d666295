/**
 * Carrying out the plan's actions: a registry of per-app runtimes. Each served app
 * has one runtime holding its scope, its status writer, and its fibers in a
 * `FiberMap` keyed by what they do and to which release or generation
 * (`prepare/<sha>`, `retry/<sha>`, `cancel/<sha>`, `deploy/<generation>`,
 * `stop/<generation>`): started by key, interrupted by key, and all interrupted when
 * the app's scope closes (the app is no longer served, or the process stops), which
 * kills their child processes and flushes the status.
 *
 * Beside the fibers, each runtime keeps what the plan observes of its work in flight
 * (preparing, retrying, deploying): an entry leaves those maps only once its fiber has
 * ended, so a pass never sees a slot free while the work is still winding down.
 * Every fiber that ends pokes the loop, like any other reason to look again.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberMap from "effect/FiberMap"
import * as Scope from "effect/Scope"
import type { ArtifactStore } from "../artifacts/store.ts"
import { nowIso } from "../common/time.ts"
import { Consul } from "../consul/consul.ts"
import type { Python } from "../python/python.ts"
import type { AppConfig, NodeStatus } from "../spec/documents.ts"
import type { Keys } from "../spec/keys.ts"
import { recordHalt, runDeploy } from "./deploy.ts"
import { appDir, pruneUnserved, removeRelease, tidyLinks } from "./disk.ts"
import { sessionName } from "./membership.ts"
import type { Action, Preparing, Retrying, WantedDeploy } from "./plan.ts"
import { markStarting, nextRetryMs, RETRY_FIRST_MS, runRelease } from "./preparation.ts"
import type { DesiredSnapshot } from "./read-desired.ts"
import { endOrphan, groupFile } from "./scripts.ts"
import type { ReconcilerSettings } from "./settings.ts"
import { emptyStatus, makeStatusWriter } from "./status.ts"
import type { StatusWriter } from "./status.ts"
import { releasePaths } from "./steps/layout.ts"
import { readMarker } from "./steps/markers.ts"

export type Services = Consul | ArtifactStore | Python

/** One served app: its scope, status writer, fibers, and the work in flight the plan sees. */
export interface AppRuntime {
  readonly app: string
  readonly scope: Scope.Closeable
  readonly status: StatusWriter
  readonly fibers: FiberMap.FiberMap<string>
  readonly preparing: Map<string, Preparing>
  /** Releases waiting to try again, with the pause to use after their next failure. */
  readonly retrying: Map<string, Retrying & { readonly nextMs: number }>
  deploying: (WantedDeploy & { readonly cancelling?: boolean }) | undefined
}

export interface AppRuntimes {
  /** The apps served now, by name. */
  readonly apps: ReadonlyMap<string, AppRuntime>
  /** Carries out one action of the plan; long work is forked into the app's fibers. */
  readonly execute: (action: Action, snapshot: DesiredSnapshot) => Effect.Effect<void, unknown, Services>
}

export interface AppRuntimesOptions {
  readonly settings: ReconcilerSettings
  readonly keys: Keys
  /** The last AppConfig of each app that decoded (kept by the loop's reads). */
  readonly lastGood: ReadonlyMap<string, AppConfig>
  /** Wakes the loop. */
  readonly poke: Effect.Effect<void>
  /** For tests; the status writer's coalescing interval. */
  readonly statusIntervalMs?: number | undefined
}

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

/**
 * How long a preparation waits for Consul to answer the write that reports it taken
 * up. Consul answers a PUT in a few milliseconds; a slow or unreachable Consul must not
 * hold the node's work back longer than this.
 */
const REPORT_FIRST_MS = 500

/**
 * A preparation starts once Consul has answered the status write that shows the
 * release taken up (or after REPORT_FIRST_MS). Its first steps (markers and folders on
 * disk, the artifact's connection) are CPU that the report does not need: where many
 * nodes share CPUs with each other and with Consul (a test machine, a dense host), each
 * node's start competed with the other nodes' reports and with Consul serving them,
 * and the last node's report went out later by the sum of those starts. On its own
 * machine a node waits one round trip.
 */
const startWhenReported = (status: StatusWriter) =>
  status.settled.pipe(Effect.timeoutOption(REPORT_FIRST_MS), Effect.asVoid)

/** The registry, living in the enclosing scope: closing it closes every app's runtime. */
export const makeAppRuntimes = (options: AppRuntimesOptions): Effect.Effect<AppRuntimes, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { settings, keys, lastGood, poke } = options
    const { node, root } = settings
    const mainScope = yield* Effect.scope
    const apps = new Map<string, AppRuntime>()

    /** Forks `effect` under `key` in the app's fibers; it starts after the current action, as a fork does. */
    const run = <R>(runtime: AppRuntime, key: string, effect: Effect.Effect<void, never, R>) =>
      FiberMap.run(runtime.fibers, key, effect, { startImmediately: false })

    const serve = (app: string, snapshot: DesiredSnapshot) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(mainScope, "sequential")
        const own = snapshot.ownStatus.get(app)
        const initial: NodeStatus = own ?? emptyStatus(node, yield* nowIso)
        const status = yield* Scope.provide(scope)(
          makeStatusWriter({
            key: keys.status(app, node),
            initial,
            stored: own !== undefined,
            ...(options.statusIntervalMs === undefined ? {} : { intervalMs: options.statusIntervalMs })
          })
        )
        // Made after the status writer: closing the scope interrupts the fibers first, then flushes.
        const fibers = yield* Scope.provide(scope)(FiberMap.make<string>())
        yield* tidyLinks(root, app)
        // A dead run's scripts must not keep going while this run takes over.
        yield* endOrphan(groupFile(appDir(root, app), "pre-deploy"), "pre-deploy")
        yield* endOrphan(groupFile(appDir(root, app), "deploy"), "deploy")
        yield* freeDeadSlots(keys, app, node)
        apps.set(app, { app, scope, status, fibers, preparing: new Map(), retrying: new Map(), deploying: undefined })
        yield* Effect.logInfo(`serving ${app}`)
      })

    const unserve = (runtime: AppRuntime, reason: string) =>
      Effect.gen(function*() {
        apps.delete(runtime.app)
        yield* Scope.close(runtime.scope, Exit.void)
        yield* Consul.use((consul) => consul.delete(keys.status(runtime.app, node))).pipe(Effect.ignore)
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
        const input = {
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
          retryMs,
          startedAt: yield* nowIso
        }
        // Reported before the run's fiber starts: the PUT goes out now, ahead of the
        // preparation's own work and of whatever else this pass does.
        yield* markStarting(input)
        const work = startWhenReported(runtime.status).pipe(
          Effect.andThen(runRelease(input)),
          Effect.flatMap((outcome) =>
            outcome._tag === "Done" ? Effect.void : Effect.gen(function*() {
              const at = (yield* Clock.currentTimeMillis) + outcome.ms
              runtime.retrying.set(sha, { specIndex: action.specIndex, at, nextMs: nextRetryMs(outcome.ms) })
              // Its time coming is a reason to look again, like any other.
              yield* run(runtime, `retry/${sha}`, Effect.sleep(outcome.ms).pipe(Effect.andThen(poke)))
            })
          ),
          Effect.ensuring(
            Effect.sync(() => {
              const entry = runtime.preparing.get(sha)
              if (entry !== undefined && !entry.cancelling) runtime.preparing.delete(sha)
            }).pipe(Effect.andThen(poke))
          )
        )
        const fiber = yield* run(runtime, `prepare/${sha}`, work)
        // Checked and recorded in one synchronous step: a fiber that already ended has
        // run its `ensuring` and must not be recorded as in flight.
        if (fiber.pollUnsafe() === undefined)
          runtime.preparing.set(sha, { specIndex: action.specIndex, cancelling: false })
      })

    const cancelPrepare = (runtime: AppRuntime, sha: string) =>
      Effect.gen(function*() {
        const entry = runtime.preparing.get(sha)
        if (entry === undefined) return
        runtime.preparing.set(sha, { ...entry, cancelling: true })
        yield* Effect.logInfo(`ReleaseSpec of ${runtime.app} ${sha} deleted: stopping its preparation`)
        yield* run(
          runtime,
          `cancel/${sha}`,
          Effect.gen(function*() {
            // Interrupting waits for the preparation to end (its child processes killed).
            yield* FiberMap.remove(runtime.fibers, `prepare/${sha}`)
            yield* removeRelease(root, runtime.app, sha).pipe(Effect.catch((e) => Effect.logWarning(e.message)))
            yield* runtime.status.update((s) => {
              const { [sha]: _gone, ...releases } = s.releases
              return { ...s, releases }
            })
          }).pipe(Effect.ensuring(Effect.sync(() => runtime.preparing.delete(sha)).pipe(Effect.andThen(poke))))
        )
      })

    const startDeploy = (
      runtime: AppRuntime,
      action: Extract<Action, { _tag: "StartDeploy" }>,
      snapshot: DesiredSnapshot
    ) =>
      Effect.gen(function*() {
        const config = lastGood.get(action.app)
        if (config === undefined) return
        const target = { generation: action.generation, sha: action.sha }
        yield* Effect.logInfo(`deploying ${action.app} ${action.sha} (generation ${action.generation})`)
        const fiber = yield* run(
          runtime,
          `deploy/${action.generation}`,
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
        if (fiber.pollUnsafe() === undefined) runtime.deploying = target
      })

    const cancelDeploy = (runtime: AppRuntime, action: Extract<Action, { _tag: "CancelDeploy" }>) =>
      Effect.gen(function*() {
        const running = runtime.deploying
        if (running === undefined || running.cancelling === true) return
        // Still in flight until its fiber has ended (its own `ensuring` forgets it).
        runtime.deploying = { ...running, cancelling: true }
        yield* Effect.logInfo(`stopping deploy generation ${action.generation} of ${action.app}: ${action.reason}`)
        // The stopped generation is closed as failed, so it is not resumed on a restart.
        const close = Effect.gen(function*() {
          const finishedAt = yield* nowIso
          yield* runtime.status.update((s) =>
            s.deploy !== null && s.deploy.generation === action.generation && s.deploy.phase !== "live" &&
              s.deploy.phase !== "failed"
              ? { ...s, deploy: { ...s.deploy, phase: "failed", message: `stopped: ${action.reason}`, finishedAt } }
              : s
          )
        })
        yield* run(
          runtime,
          `stop/${running.generation}`,
          FiberMap.remove(runtime.fibers, `deploy/${running.generation}`).pipe(
            Effect.andThen(close),
            Effect.andThen(poke)
          )
        )
      })

    const setRelease = (runtime: AppRuntime, sha: string, entry: NodeStatus["releases"][string]) =>
      runtime.status.update((s) => ({ ...s, releases: { ...s.releases, [sha]: entry } }))

    const setDeploy = (runtime: AppRuntime, deploy: NonNullable<NodeStatus["deploy"]>) =>
      runtime.status.update((s) => ({ ...s, deploy }))

    const execute = (action: Action, snapshot: DesiredSnapshot): Effect.Effect<void, unknown, Services> => {
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
              finishedAt: before?.finishedAt ?? (yield* nowIso)
            })
          })
        case "FailRelease":
          return Effect.gen(function*() {
            yield* Effect.logWarning(`prepare ${action.app} ${action.sha}: failed: ${action.message}`, {
              app: action.app,
              sha: action.sha
            })
            yield* setRelease(runtime, action.sha, {
              phase: "failed",
              attempt: action.attempt,
              specIndex: action.specIndex,
              steps: {},
              message: action.message,
              finishedAt: yield* nowIso
            })
          })
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
        case "CancelDeploy":
          return cancelDeploy(runtime, action)
        case "DeployWaiting":
          return Effect.flatMap(nowIso, (startedAt) =>
            setDeploy(runtime, {
              generation: action.generation,
              sha: action.sha,
              phase: "waiting",
              message: action.message,
              startedAt
            }))
        case "AdoptLive":
          return Effect.gen(function*() {
            yield* setDeploy(runtime, {
              generation: action.generation,
              sha: action.sha,
              phase: "live",
              message: "already live in current when this node began serving the app; bin/deploy not run again",
              finishedAt: yield* nowIso
            })
            yield* runtime.status.flush
            yield* Effect.logInfo(
              `deploy ${action.app} ${action.sha} generation ${action.generation}: live (already current)`,
              { app: action.app, sha: action.sha, generation: action.generation }
            )
          })
        case "FailDeploy":
          return Effect.gen(function*() {
            yield* Effect.logWarning(
              `deploy ${action.app} ${action.sha} generation ${action.generation}: failed: ${action.message}`,
              { app: action.app, sha: action.sha, generation: action.generation }
            )
            yield* recordHalt(keys, action.app, action.generation, node, action.message)
            yield* setDeploy(runtime, {
              generation: action.generation,
              sha: action.sha,
              phase: "failed",
              message: action.message,
              finishedAt: yield* nowIso
            })
            yield* runtime.status.flush
          })
      }
    }

    return { apps, execute }
  })
