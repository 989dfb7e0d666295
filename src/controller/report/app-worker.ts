/**
 * A report worker: runs a per-app pass over the latest Snapshot for the apps that
 * changed, for the apps whose asked-for time came (a coalescing window ends, a retry
 * is due, a release reaches its prepareTimeout), and for every app once a minute
 * regardless. A change is debounced briefly, so a burst of status writes across apps
 * is one round of passes. Level-based: a pass reads the app's whole current state,
 * never the event that woke it, so missed or duplicated wake-ups are harmless.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type { Consul } from "../../consul/consul.ts"
import type { Metrics } from "../metrics.ts"
import type { Snapshot } from "./snapshot.ts"
import type { Changed } from "./watch-tree.ts"

const RESYNC_MS = 60_000
/** A change waits this long for others before the passes run. */
const DEBOUNCE_MS = 50

/** One app's pass; returns when it needs another look (ms), or undefined. Absent apps must be handled (they went). */
type AppPass = (snapshot: Snapshot, app: string) => Effect.Effect<number | undefined, never, Consul>

export interface AppWorker {
  /** Marks apps changed and wakes the worker; `at` is when the snapshot was delivered. */
  readonly changed: (what: Changed, snapshot: Snapshot, at: number) => Effect.Effect<void>
}

/** Starts the worker in the enclosing scope. */
export const startAppWorker = (name: string, pass: AppPass, metrics: Metrics | undefined) =>
  Effect.gen(function*() {
    const wake = yield* Queue.sliding<void>(1)
    let latest: { readonly snapshot: Snapshot; readonly at: number } | undefined
    let all = true
    const dirty = new Set<string>()
    const due = new Map<string, number>()
    let resyncAt = 0

    const round = Effect.gen(function*() {
      const current = latest
      if (current === undefined) return
      const now = yield* Clock.currentTimeMillis
      if (now >= resyncAt) all = true
      const apps = new Set(all ? current.snapshot.apps.keys() : dirty)
      for (const [app, at] of due) if (at <= now || all) apps.add(app)
      if (all) resyncAt = now + RESYNC_MS
      all = false
      dirty.clear()
      yield* Effect.forEach(apps, (app) =>
        Effect.gen(function*() {
          metrics?.inc("sacar_report_passes_total", { loop: name, app })
          const next = yield* pass(current.snapshot, app)
          if (next === undefined) due.delete(app)
          else due.set(app, next)
        }), { concurrency: 4, discard: true })
      metrics?.set(
        "sacar_reconcile_lag_seconds",
        { loop: name },
        ((yield* Clock.currentTimeMillis) - current.at) / 1000
      )
    })

    // The worker's main loop: wait for a change or the next due time, then a round.
    yield* Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      let until = resyncAt
      for (const at of due.values()) until = Math.min(until, at)
      const waitMs = latest === undefined ? Infinity : until - now
      // A change has offered to `wake` already, so this returns at once for it.
      if (waitMs > 0) {
        const woken = yield* Queue.take(wake).pipe(Effect.timeoutOption(Math.max(1, Math.min(waitMs, RESYNC_MS))))
        if (woken._tag === "Some") yield* Effect.sleep(DEBOUNCE_MS)
      }
      yield* round
    }).pipe(Effect.forever, Effect.forkScoped)

    const worker: AppWorker = {
      changed: (what, snapshot, at) =>
        Effect.suspend(() => {
          latest = { snapshot, at }
          if (what.all) all = true
          else for (const app of what.apps) dirty.add(app)
          return Queue.offer(wake, undefined).pipe(Effect.asVoid)
        })
    }
    return worker
  })
