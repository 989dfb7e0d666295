/**
 * What the status page reads: one blocking-query watch over `<prefix>/` per controller
 * process, read with `?stale`, started by the first page
 * request and kept until the server's scope ends. Every browser is served from it, so
 * a hundred open pages cost Consul nothing more than one, and nobody polls the nodes.
 *
 * Each change rebuilds only the apps whose keys changed: an app's documents are
 * decoded into a status report (src/state, the same code as `sacar status --json`)
 * when its entries' count or highest ModifyIndex moves, or when the node
 * registrations do. `changedAt` records the watch index at which an app last
 * changed, so a browser that has seen index N is sent only the apps changed after N.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Consul, KvEntry } from "../../consul/consul.ts"
import { watchPrefix } from "../../consul/watch.ts"
import type { Keys } from "../../spec/keys.ts"
import { isAppName } from "../../spec/names.ts"
import type { AppStatusReport } from "../../spec/status-report.ts"
import type { DecodeMemo } from "../../spec/tree.ts"
import { appExists, reportOf } from "../../state/report.ts"
import { snapshotFrom } from "../../state/snapshot.ts"

export interface PageApp {
  readonly report: AppStatusReport
  /** The watch index at which this app's documents last changed. */
  readonly changedAt: number
}

export interface PageState {
  readonly index: number
  /** By app name, sorted. */
  readonly apps: ReadonlyArray<PageApp>
}

/** The document kinds the page shows; `github/` and `locks/` churn without changing it. */
const SHOWN = new Set(["config", "release", "deploy", "status", "lock", "pin"])

interface Cached extends PageApp {
  readonly signature: string
}

/** What one feed keeps between changes: each app's last report, each document decoded. */
export interface PageCache {
  readonly apps: Map<string, Cached>
  readonly memo: DecodeMemo
}

export const emptyPageCache = (): PageCache => ({ apps: new Map(), memo: new Map() })

/** Entries grouped by app, and the signature that says whether an app changed. */
const group = (keys: Keys, entries: ReadonlyArray<KvEntry>) => {
  const byApp = new Map<string, KvEntry[]>()
  const nodes: KvEntry[] = []
  for (const entry of entries) {
    const parsed = keys.parse(entry.key)
    if (parsed.kind === "node") nodes.push(entry)
    else if ("app" in parsed && SHOWN.has(parsed.kind)) {
      const list = byApp.get(parsed.app) ?? []
      list.push(entry)
      byApp.set(parsed.app, list)
    } else if (parsed.kind === "other") {
      // A key under an app's folder that Sacar cannot place (e.g. releases/<not a sha>)
      // still belongs to that app's view: snapshotFrom ignores it, but it moves the signature.
      const first = parsed.key.slice(keys.root.length).split("/")[0] ?? ""
      if (isAppName(first)) byApp.set(first, [...(byApp.get(first) ?? []), entry])
    }
  }
  return { byApp, nodes }
}

const signatureOf = (entries: ReadonlyArray<KvEntry>, nodesSignature: string): string => {
  let max = 0
  for (const e of entries) if (e.modifyIndex > max) max = e.modifyIndex
  return `${entries.length}:${max}:${nodesSignature}`
}

/** Pure: the next page state from the previous cache and a new listing of the prefix. */
export const nextPageState = (
  keys: Keys,
  cache: PageCache,
  index: number,
  entries: ReadonlyArray<KvEntry>,
  now: Date
): PageState => {
  const { byApp, nodes } = group(keys, entries)
  const nodesSignature = signatureOf(nodes, "")
  for (const name of cache.apps.keys()) if (!byApp.has(name)) cache.apps.delete(name)
  if (cache.memo.size > entries.length) {
    const present = new Set(entries.map((e) => e.key))
    for (const key of cache.memo.keys()) if (!present.has(key)) cache.memo.delete(key)
  }
  const apps: PageApp[] = []
  for (const name of [...byApp.keys()].sort()) {
    const appEntries = byApp.get(name)!
    const signature = signatureOf(appEntries, nodesSignature)
    const cached = cache.apps.get(name)
    if (cached !== undefined && cached.signature === signature) {
      apps.push(cached)
      continue
    }
    const snapshot = snapshotFrom(keys, name, appEntries, nodes, index, cache.memo)
    if (!appExists(snapshot)) continue
    const fresh: Cached = { report: reportOf(snapshot, now), changedAt: index, signature }
    cache.apps.set(name, fresh)
    apps.push(fresh)
  }
  return { index, apps }
}

export interface PageFeed {
  /** The latest state, waiting for the watch's first answer when needed. */
  readonly current: Effect.Effect<PageState>
  /**
   * The first state whose index differs from `seen`, or undefined when nothing
   * changed within `maxMs`.
   */
  readonly after: (seen: number, maxMs: number) => Effect.Effect<PageState | undefined>
  /** Answers every held request at once ("nothing new"): the server is about to close. */
  readonly release: Effect.Effect<void>
}

/** The feed for `keys`, its watch forked into the current scope on first use. */
export const makePageFeed = (keys: Keys): Effect.Effect<PageFeed, never, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const context = yield* Effect.context<Consul>()
    const cache = emptyPageCache()
    let latest: PageState | undefined
    let changed = yield* Deferred.make<void>()
    let started = false
    let released = false

    // `?stale`: the page only shows; any server may answer (docs/decisions.md, "Stale reads").
    const watch = watchPrefix(keys.root, { stale: true }).pipe(
      Stream.runForEach((result) =>
        Effect.gen(function*() {
          latest = nextPageState(keys, cache, result.index, result.value, new Date(yield* Clock.currentTimeMillis))
          const previous = changed
          changed = yield* Deferred.make<void>()
          yield* Deferred.succeed(previous, undefined)
        })
      )
    )

    const ensureStarted = Effect.suspend(() => {
      if (started) return Effect.void
      started = true
      return Effect.asVoid(Effect.forkIn(Effect.provideContext(watch, context), scope))
    })

    const current: Effect.Effect<PageState> = Effect.gen(function*() {
      yield* ensureStarted
      while (latest === undefined) yield* Deferred.await(changed)
      return latest
    })

    const after = (seen: number, maxMs: number): Effect.Effect<PageState | undefined> =>
      Effect.gen(function*() {
        const now = yield* current
        // Compare and pick the Deferred in one synchronous step: a change between the two
        // would otherwise complete a Deferred this request never awaits.
        const next = changed
        const state = latest ?? now
        if (state.index !== seen) return state
        if (released) return undefined
        const waited = yield* Deferred.await(next).pipe(Effect.timeoutOption(maxMs))
        return waited._tag === "Some" && !released ? latest : undefined
      })

    const release = Effect.suspend(() => {
      released = true
      return Effect.asVoid(Deferred.succeed(changed, undefined))
    })

    return { current, after, release }
  })
