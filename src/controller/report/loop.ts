/**
 * The report loop, run by the leader. watch-tree.ts keeps the latest Snapshot, one
 * group of keys per app (a status write decodes its own app's keys, not every app's).
 * Two workers (app-worker.ts) run a pass per app that changed, whose asked-for time
 * came, or once a minute regardless: a NodeStatus write re-renders that app's check
 * runs and no other app's.
 *
 * The workers are separate so GitHub being slow or down (calls retried for up to a
 * minute and a half) never delays auto-deploy and retention, which only touch KV.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Consul } from "../../consul/consul.ts"
import type { GitHubShape } from "../../github/github.ts"
import { formatDuration } from "../../spec/duration.ts"
import type { Keys } from "../../spec/keys.ts"
import type { Metrics } from "../metrics.ts"
import { startAppWorker } from "./app-worker.ts"
import type { AppWorker } from "./app-worker.ts"
import { autoDeploy, decideAutoDeploy } from "./autodeploy.ts"
import { githubPass, newMemory } from "./github-report.ts"
import { DEFAULT_PRUNING, failedReleasesToPrune } from "./pruning.ts"
import type { PruningSettings } from "./pruning.ts"
import { expectedNodes, releaseView } from "./release-view.ts"
import { deleteReleaseSpec, releasesToRemove } from "./retention.ts"
import type { Snapshot } from "./snapshot.ts"
import { watchTree } from "./watch-tree.ts"

export const COALESCE_MS = 2_000
const KV_RETRY_MS = 5_000

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

/** Auto-deploy, retention and the pruning of failed releases for one app; returns when to look again. */
const kvPass = (keys: Keys, pruning: PruningSettings, snapshot: Snapshot, name: string) =>
  Effect.gen(function*() {
    const app = snapshot.apps.get(name)
    if (app?.config === undefined) return undefined
    const now = new Date(yield* Clock.currentTimeMillis)
    const decision = decideAutoDeploy(app, snapshot.nodes, now)
    if (decision.kind === "deploy") yield* autoDeploy(keys, app, decision.sha, now)
    for (const sha of releasesToRemove(app, snapshot.nodes)) {
      yield* deleteReleaseSpec(keys, app, sha, `beyond keepReleases ${app.config.keepReleases}`)
    }
    const ttl = formatDuration(pruning.failedReleaseTtlMs)
    for (const sha of failedReleasesToPrune(app, snapshot.nodes, now.getTime(), pruning.failedReleaseTtlMs)) {
      yield* deleteReleaseSpec(keys, app, sha, `failed, and nothing happened to it for ${ttl}`)
    }
    return undefined as number | undefined
  }).pipe(
    Effect.catch((error) =>
      Effect.logWarning(
        `report loop: ${name}: ${error.message}; auto-deploy and retention try again in ${KV_RETRY_MS / 1000}s`
      ).pipe(Effect.andThen(Clock.currentTimeMillis), Effect.map((now) => now + KV_RETRY_MS))
    )
  )

type GaugeRow = { readonly labels: { readonly app: string; readonly phase: string }; readonly value: number }

/** sacar_releases{app,phase} rows of one app: its releases by where they stand on the expected nodes. */
const releaseRows = (snapshot: Snapshot, name: string): ReadonlyArray<GaugeRow> => {
  const app = snapshot.apps.get(name)
  if (app?.config === undefined) return []
  const expected = expectedNodes(app.config, snapshot.nodes)
  const counts = new Map<string, number>()
  for (const sha of app.releases.keys()) {
    const view = releaseView(sha, expected, app.statuses)
    const phase = view.allReady ? "ready" : view.failed.length > 0 ? "failed" : "preparing"
    counts.set(phase, (counts.get(phase) ?? 0) + 1)
  }
  return [...counts].map(([phase, value]) => ({ labels: { app: name, phase }, value }))
}

export const reportLoop = (options: ReportLoopOptions): Effect.Effect<never, never, Consul> =>
  Effect.scoped(
    Effect.gen(function*() {
      const { keys, metrics } = options
      const workers: Array<AppWorker> = []
      const gauge = new Map<string, ReadonlyArray<GaugeRow>>()
      const pruning = options.pruning ?? DEFAULT_PRUNING

      workers.push(
        yield* startAppWorker("kv", (snapshot, app) =>
          Effect.suspend(() => {
            if (metrics !== undefined) {
              const rows = releaseRows(snapshot, app)
              if (rows.length === 0) gauge.delete(app)
              else gauge.set(app, rows)
              metrics.replace("sacar_releases", [...gauge.values()].flat())
            }
            return kvPass(keys, pruning, snapshot, app)
          }), metrics)
      )
      if (options.github !== undefined) {
        const passOptions = {
          keys,
          github: options.github,
          publicUrl: options.publicUrl,
          coalesceMs: options.coalesceMs ?? COALESCE_MS,
          metrics,
          memory: newMemory(),
          pruning
        }
        workers.push(
          yield* startAppWorker("github", (snapshot, app) => githubPass(passOptions, snapshot, app), metrics)
        )
      } else {
        yield* Effect.logInfo("report loop: no GitHub configured (KV-only): auto-deploy and retention only")
      }

      // Each problem is logged once while it lasts; the set holds only current ones.
      let problemsLogged = new Set<string>()
      return yield* watchTree(keys, metrics, (what, snapshot) =>
        Effect.gen(function*() {
          const current = new Set(snapshot.problems)
          for (const problem of current) {
            if (!problemsLogged.has(problem)) yield* Effect.logWarning(`report loop: ${problem}`)
          }
          problemsLogged = current
          const at = yield* Clock.currentTimeMillis
          for (const worker of workers) yield* worker.changed(what, snapshot, at)
        }))
    })
  )
