/**
 * The report loop, run by the leader. One blocking-query watch over `<prefix>/` keeps
 * the latest Snapshot; two workers recompute from it whenever it changes, or when a
 * time they asked for comes (a coalescing window ends, a retry is due, a release
 * reaches its prepareTimeout), or once a minute regardless. Level-based: a wake-up
 * carries no meaning, each pass reads the whole snapshot, so missed or duplicated
 * wake-ups are harmless.
 *
 * The workers are separate so GitHub being slow or down (calls retried for up to a
 * minute and a half) never delays auto-deploy and retention, which only touch KV.
 */
import { Effect, Queue, Stream } from "effect"
import { Consul } from "../../consul/Consul.ts"
import { watchPrefix } from "../../consul/watch.ts"
import type { GitHubShape } from "../../github/GitHub.ts"
import type { Keys } from "../../spec/keys.ts"
import type { Metrics } from "../metrics.ts"
import { autoDeploy, decideAutoDeploy } from "./autodeploy.ts"
import { githubPass, newMemory } from "./github-report.ts"
import { expectedNodes, releaseView } from "./release-view.ts"
import { releasesToRemove, removeRelease } from "./retention.ts"
import { readSnapshot } from "./snapshot.ts"
import type { Snapshot } from "./snapshot.ts"

export const COALESCE_MS = 2_000
const RESYNC_MS = 60_000
const KV_RETRY_MS = 5_000

export interface ReportLoopOptions {
  readonly keys: Keys
  /** undefined: KV-only (no GitHub configured); auto-deploy and retention still run. */
  readonly github: GitHubShape | undefined
  readonly publicUrl: string | undefined
  readonly metrics: Metrics | undefined
  /** Minimum gap between two updates of one check run; default 2 s. */
  readonly coalesceMs?: number | undefined
}

interface Latest {
  readonly snapshot: Snapshot
  /** When the watch delivered it, for sacar_reconcile_lag_seconds. */
  readonly at: number
}

/** Auto-deploy and retention for every app; returns when to look again. */
const kvPass = (keys: Keys, snapshot: Snapshot) =>
  Effect.gen(function*() {
    const now = new Date()
    for (const app of snapshot.apps.values()) {
      if (app.config === undefined) continue
      const decision = decideAutoDeploy(app, snapshot.nodes, now)
      if (decision.kind === "deploy") yield* autoDeploy(keys, app, decision.sha, now)
      for (const sha of releasesToRemove(app, snapshot.nodes)) yield* removeRelease(keys, app, sha)
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

      yield* worker("kv", (snapshot) => kvPass(keys, snapshot))
      if (options.github !== undefined) {
        const passOptions = {
          keys,
          github: options.github,
          publicUrl: options.publicUrl,
          coalesceMs: options.coalesceMs ?? COALESCE_MS,
          metrics,
          memory: newMemory(),
          now: () => Date.now()
        }
        yield* worker("github", (snapshot) => githubPass(passOptions, snapshot))
      } else {
        yield* Effect.logInfo("report loop: no GitHub configured (KV-only): auto-deploy and retention only")
      }

      return yield* watchPrefix(keys.root).pipe(
        Stream.runForEach((result) =>
          Effect.gen(function*() {
            const snapshot = readSnapshot(keys, result.index, result.value)
            for (const problem of snapshot.problems) {
              if (problemsLogged.has(problem)) continue
              problemsLogged.add(problem)
              yield* Effect.logWarning(`report loop: ${problem}`)
            }
            latest = { snapshot, at: Date.now() }
            if (metrics !== undefined) releaseGauge(metrics, snapshot)
            for (const wake of wakes) yield* Queue.offer(wake, undefined)
          })
        ),
        Effect.andThen(Effect.never)
      )
    })
  )
