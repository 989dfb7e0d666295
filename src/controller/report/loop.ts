/**
 * The report loop, run by the leader. Blocking-query watches split by what changes
 * together — one per app over `<prefix>/<app>/`, one over `<prefix>/_nodes/` — keep
 * the latest Snapshot (a status write refetches its own app's keys, not every app's);
 * new apps are found by a keys-only listing every few seconds. Two workers recompute from it whenever it changes, or when a
 * time they asked for comes (a coalescing window ends, a retry is due, a release
 * reaches its prepareTimeout), or once a minute regardless. Level-based: a wake-up
 * carries no meaning, each pass reads the whole snapshot, so missed or duplicated
 * wake-ups are harmless.
 *
 * The workers are separate so GitHub being slow or down (calls retried for up to a
 * minute and a half) never delays auto-deploy and retention, which only touch KV.
 */
import { Clock, Effect, Fiber, Queue, Stream } from "effect"
import type { KvEntry } from "../../consul/Consul.ts"
import { Consul } from "../../consul/Consul.ts"
import { watchPrefix } from "../../consul/watch.ts"
import type { GitHubShape } from "../../github/GitHub.ts"
import { formatDuration } from "../../spec/duration.ts"
import type { Keys } from "../../spec/keys.ts"
import { isAppName } from "../../spec/names.ts"
import type { Metrics } from "../metrics.ts"
import { autoDeploy, decideAutoDeploy } from "./autodeploy.ts"
import { githubPass, newMemory } from "./github-report.ts"
import { DEFAULT_PRUNING, failedReleasesToPrune } from "./pruning.ts"
import type { PruningSettings } from "./pruning.ts"
import { expectedNodes, releaseView } from "./release-view.ts"
import { releasesToRemove, removeRelease } from "./retention.ts"
import { readSnapshot } from "./snapshot.ts"
import type { Snapshot } from "./snapshot.ts"

export const COALESCE_MS = 2_000
const RESYNC_MS = 60_000
const KV_RETRY_MS = 5_000
/** How often new apps are looked for (a keys-only listing of the prefix). */
const DISCOVER_EVERY_MS = 5_000

/**
 * Every entry under `keys.root` that a Snapshot reads, kept up to date by one watch per
 * group of keys that changes together; `changed` is called with the index and the
 * entries after each change (and once every group has answered at least once).
 */
const watchTree = (
  keys: Keys,
  changed: (index: number, entries: ReadonlyArray<KvEntry>) => Effect.Effect<void>
): Effect.Effect<never, never, Consul> =>
  Effect.scoped(Effect.gen(function*() {
    const consul = yield* Consul
    const groups = new Map<string, { fiber: Fiber.Fiber<void>; entries?: ReadonlyArray<KvEntry>; index: number }>()
    let discovered = false
    const emit = Effect.suspend(() => {
      if (!discovered) return Effect.void
      let index = 0
      const entries: Array<KvEntry> = []
      for (const group of groups.values()) {
        if (group.entries === undefined) return Effect.void
        index = Math.max(index, group.index)
        entries.push(...group.entries)
      }
      return changed(index, entries)
    })
    const follow = (prefix: string) =>
      Effect.gen(function*() {
        const group: { fiber: Fiber.Fiber<void>; entries?: ReadonlyArray<KvEntry>; index: number } = {
          fiber: undefined as never,
          index: 0
        }
        groups.set(prefix, group)
        group.fiber = yield* watchPrefix(prefix).pipe(
          Stream.runForEach((result) =>
            Effect.suspend(() => {
              group.entries = result.value
              group.index = result.index
              return emit
            })
          ),
          Effect.forkScoped
        )
      })
    yield* follow(keys.nodes)
    const discover = Effect.gen(function*() {
      const listed = yield* consul.keys(keys.root, "/")
      const apps = new Set(
        listed.filter((k) => k.endsWith("/")).map((k) => k.slice(keys.root.length, -1)).filter(isAppName).map((a) =>
          keys.app(a)
        )
      )
      for (const prefix of apps) if (!groups.has(prefix)) yield* follow(prefix)
      for (const [prefix, group] of groups) {
        if (prefix === keys.nodes || apps.has(prefix)) continue
        groups.delete(prefix)
        yield* Fiber.interrupt(group.fiber)
      }
      if (!discovered) {
        discovered = true
        yield* emit
      }
    }).pipe(Effect.catch((error) => Effect.logWarning(`report loop: cannot list the apps: ${error.message}`)))
    return yield* Effect.forever(
      discover.pipe(Effect.andThen(Effect.suspend(() => Effect.sleep(discovered ? DISCOVER_EVERY_MS : 1_000))))
    )
  }))

export interface ReportLoopOptions {
  readonly keys: Keys
  /** undefined: KV-only (no GitHub configured); auto-deploy and retention still run. */
  readonly github: GitHubShape | undefined
  readonly publicUrl: string | undefined
  readonly metrics: Metrics | undefined
  /** Minimum gap between two updates of one check run; default 2 s. */
  readonly coalesceMs?: number | undefined
  /** The TTLs of pruning.ts; default DEFAULT_PRUNING. */
  readonly pruning?: PruningSettings | undefined
}

interface Latest {
  readonly snapshot: Snapshot
  /** When the watch delivered it, for sacar_reconcile_lag_seconds. */
  readonly at: number
}

/** Auto-deploy, retention and the pruning of failed releases for every app; returns when to look again. */
const kvPass = (keys: Keys, pruning: PruningSettings, snapshot: Snapshot) =>
  Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis)
    const ttl = formatDuration(pruning.failedReleaseTtlMs)
    for (const app of snapshot.apps.values()) {
      if (app.config === undefined) continue
      const decision = decideAutoDeploy(app, snapshot.nodes, now)
      if (decision.kind === "deploy") yield* autoDeploy(keys, app, decision.sha, now)
      for (const sha of releasesToRemove(app, snapshot.nodes)) {
        yield* removeRelease(keys, app, sha, `beyond keepReleases ${app.config.keepReleases}`)
      }
      for (const sha of failedReleasesToPrune(app, snapshot.nodes, now.getTime(), pruning.failedReleaseTtlMs)) {
        yield* removeRelease(keys, app, sha, `failed, and nothing happened to it for ${ttl}`)
      }
    }
    return undefined as number | undefined
  }).pipe(
    Effect.catch((error) =>
      Effect.logWarning(`report loop: ${error.message}; auto-deploy and retention try again in ${KV_RETRY_MS / 1000}s`)
        .pipe(
          Effect.as(Date.now() + KV_RETRY_MS)
        )
    )
  )

/** sacar_releases{app,phase}: every release by where it stands on the expected nodes. */
const releaseGauge = (metrics: Metrics, snapshot: Snapshot) => {
  const counts = new Map<string, { app: string; phase: string; n: number }>()
  for (const app of snapshot.apps.values()) {
    if (app.config === undefined) continue
    const expected = expectedNodes(app.config, snapshot.nodes)
    for (const sha of app.releases.keys()) {
      const view = releaseView(sha, expected, app.statuses)
      const phase = view.allReady ? "ready" : view.failed.length > 0 ? "failed" : "preparing"
      const key = `${app.app}/${phase}`
      const row = counts.get(key) ?? { app: app.app, phase, n: 0 }
      counts.set(key, { ...row, n: row.n + 1 })
    }
  }
  metrics.replace(
    "sacar_releases",
    [...counts.values()].map((r) => ({ labels: { app: r.app, phase: r.phase }, value: r.n }))
  )
}

export const reportLoop = (options: ReportLoopOptions): Effect.Effect<never, never, Consul> =>
  Effect.scoped(
    Effect.gen(function*() {
      const { keys, metrics } = options
      let latest: Latest | undefined
      const problemsLogged = new Set<string>()
      const wakes: Array<Queue.Queue<void>> = []

      /** Passes over the latest snapshot, on a wake-up or at the time the last pass asked for. */
      const worker = (name: string, pass: (snapshot: Snapshot) => Effect.Effect<number | undefined, never, Consul>) =>
        Effect.gen(function*() {
          // Created before the watch starts, so its first snapshot wakes every worker.
          const wake = yield* Queue.sliding<void>(1)
          wakes.push(wake)
          const run = Effect.gen(function*() {
            let next: number | undefined
            while (true) {
              const waitMs = Math.min(next ?? Infinity, Date.now() + RESYNC_MS) - Date.now()
              if (latest === undefined || waitMs > 0) {
                yield* Queue.take(wake).pipe(Effect.timeoutOption(Math.max(1, waitMs)), Effect.asVoid)
              }
              const current = latest
              if (current === undefined) continue
              next = yield* pass(current.snapshot)
              metrics?.set("sacar_reconcile_lag_seconds", { loop: name }, (Date.now() - current.at) / 1000)
            }
          })
          yield* Effect.forkScoped(run)
        })

      const pruning = options.pruning ?? DEFAULT_PRUNING
      yield* worker("kv", (snapshot) => kvPass(keys, pruning, snapshot))
      if (options.github !== undefined) {
        const passOptions = {
          keys,
          github: options.github,
          publicUrl: options.publicUrl,
          coalesceMs: options.coalesceMs ?? COALESCE_MS,
          metrics,
          memory: newMemory(),
          now: () => Date.now(),
          pruning
        }
        yield* worker("github", (snapshot) => githubPass(passOptions, snapshot))
      } else {
        yield* Effect.logInfo("report loop: no GitHub configured (KV-only): auto-deploy and retention only")
      }

      return yield* watchTree(keys, (index, entries) =>
        Effect.gen(function*() {
          const snapshot = readSnapshot(keys, index, entries)
          for (const problem of snapshot.problems) {
            if (problemsLogged.has(problem)) continue
            problemsLogged.add(problem)
            yield* Effect.logWarning(`report loop: ${problem}`)
          }
          latest = { snapshot, at: Date.now() }
          if (metrics !== undefined) releaseGauge(metrics, snapshot)
          for (const wake of wakes) yield* Queue.offer(wake, undefined)
        }))
    })
  )
