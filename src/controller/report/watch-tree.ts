/**
 * What the report loop reads, split by what changes together: one group of keys per
 * app under `<prefix>/<app>/`, one under `<prefix>/_nodes/`, and a keys-only listing of
 * the prefix every few seconds to find apps that came or went. Each group is read
 * incrementally (incremental-read.ts: a keys-only blocking query, then only the keys
 * whose ModifyIndex moved), so a NodeStatus write downloads that one status, not every
 * node's; and each group is decoded into its own Snapshot when it changes, with a memo
 * of the documents decoded before, so only the changed document is decoded again.
 * `locks/` keys other than `locks/predeploy/` (the deploy slots, which churn through a
 * rollout) are not read at all.
 *
 * The listings read with `?stale`: the report loop only shows what the nodes said
 * (check runs, deployment statuses, metrics), and the writes it decides from them
 * (auto-deploy, retention, record updates) are guarded by check-and-set in Consul
 * (docs/decisions.md, "Stale reads").
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import type { KvEntry } from "../../consul/consul.ts"
import { Consul } from "../../consul/consul.ts"
import type { Keys } from "../../spec/keys.ts"
import { isAppName } from "../../spec/names.ts"
import type { DecodeMemo } from "../../spec/tree.ts"
import type { Metrics } from "../metrics.ts"
import { watchIncrementally } from "./incremental-read.ts"
import { joinSnapshots, readSnapshot } from "./snapshot.ts"
import type { Snapshot } from "./snapshot.ts"

/** How often new apps are looked for (a keys-only listing of the prefix). */
const DISCOVER_EVERY_MS = 5_000

/** What changed since the last call: the apps whose keys changed (or went), or every app. */
export type Changed = { readonly all: true } | { readonly all: false; readonly apps: ReadonlySet<string> }

interface Group {
  /** undefined: the node registrations. */
  readonly app: string | undefined
  fiber: Fiber.Fiber<void> | undefined
  part: Snapshot | undefined
  signature: string
  /** The group's documents as last decoded, by key and ModifyIndex. */
  readonly memo: DecodeMemo
}

/** Whether the report loop reads `key`: everything but the deploy slots and halts under `locks/`. */
const read = (keys: Keys, key: string): boolean => {
  const parsed = keys.parse(key)
  return parsed.kind !== "locks" || parsed.rest.startsWith("predeploy/")
}

/** The entries' keys, versions and holders: equal signatures, equal documents. */
const signatureOf = (entries: ReadonlyArray<KvEntry>): string =>
  entries.map((e) => `${e.key}\u0000${e.modifyIndex}\u0000${e.session ?? ""}`).join("\u0001")

/**
 * Runs forever, calling `changed` with the joined Snapshot after each change once every
 * group has answered (the first call says every app changed). `metrics` counts the
 * decodes per app in sacar_report_decodes_total{app}.
 */
export const watchTree = (
  keys: Keys,
  metrics: Metrics | undefined,
  changed: (what: Changed, snapshot: Snapshot) => Effect.Effect<void>
): Effect.Effect<never, never, Consul> =>
  Effect.scoped(Effect.gen(function*() {
    const consul = yield* Consul
    const groups = new Map<string, Group>()
    let discovered = false

    // Changes seen while a group has not answered yet (a new app) are kept for the next call.
    let pendingAll = true
    const pending = new Set<string>()
    const emit = (what: Changed) =>
      Effect.suspend(() => {
        if (what.all) pendingAll = true
        else for (const app of what.apps) pending.add(app)
        if (!discovered) return Effect.void
        const parts: Snapshot[] = []
        for (const group of groups.values()) {
          if (group.part === undefined) return Effect.void
          parts.push(group.part)
        }
        const next: Changed = pendingAll ? { all: true } : { all: false, apps: new Set(pending) }
        pendingAll = false
        pending.clear()
        return changed(next, joinSnapshots(parts))
      })

    const follow = (prefix: string, app: string | undefined) =>
      Effect.gen(function*() {
        const group: Group = { app, fiber: undefined, part: undefined, signature: "", memo: new Map() }
        groups.set(prefix, group)
        group.fiber = yield* watchIncrementally(prefix, (key) => read(keys, key)).pipe(
          Stream.runForEach((result) =>
            Effect.suspend(() => {
              // An empty prefix (no node registered yet) answers with the whole table's index
              // at every write nearby: the same entries are no change, for this app or any.
              const signature = signatureOf(result.value)
              if (group.part !== undefined && signature === group.signature) return Effect.void
              group.signature = signature
              group.part = readSnapshot(keys, result.index, result.value, group.memo)
              // The memo follows the keys there are now, not every key there ever was.
              if (group.memo.size > result.value.length) {
                const present = new Set(result.value.map((e) => e.key))
                for (const key of group.memo.keys()) if (!present.has(key)) group.memo.delete(key)
              }
              if (app !== undefined) metrics?.inc("sacar_report_decodes_total", { app })
              // The registrations decide every app's expected nodes.
              return emit(app === undefined ? { all: true } : { all: false, apps: new Set([app]) })
            })
          ),
          Effect.forkScoped
        )
      })

    yield* follow(keys.nodes, undefined)
    const discover = Effect.gen(function*() {
      const listed = yield* consul.keys(keys.root, "/")
      const names = new Set(
        listed.filter((k) => k.endsWith("/")).map((k) => k.slice(keys.root.length, -1)).filter(isAppName)
      )
      const gone = new Set<string>()
      for (const name of names) if (!groups.has(keys.app(name))) yield* follow(keys.app(name), name)
      for (const [prefix, group] of groups) {
        if (group.app === undefined || names.has(group.app)) continue
        groups.delete(prefix)
        gone.add(group.app)
        if (group.fiber !== undefined) yield* Fiber.interrupt(group.fiber)
      }
      if (!discovered) {
        discovered = true
        yield* emit({ all: true })
      } else if (gone.size > 0) {
        yield* emit({ all: false, apps: gone })
      }
    }).pipe(Effect.catch((error) => Effect.logWarning(`report loop: cannot list the apps: ${error.message}`)))
    return yield* Effect.forever(
      discover.pipe(Effect.andThen(Effect.suspend(() => Effect.sleep(discovered ? DISCOVER_EVERY_MS : 1_000))))
    )
  }))
