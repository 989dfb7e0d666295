/**
 * Everything Sacar knows about one app, read in two requests (the app's prefix and
 * the node registrations) and projected from the KV tree (spec/tree.ts). Documents that do not decode
 * are kept as `problems` (one sentence each) instead of failing the whole read: the
 * CLI and the status endpoint must still show the rest.
 */
import * as Effect from "effect/Effect"
import { Consul } from "../consul/consul.ts"
import type { ConsulError, KvEntry } from "../consul/consul.ts"
import type { AppConfig, DeploySpec, LockDoc, NodeStatus, PinDoc, ReleaseSpec } from "../spec/documents.ts"
import { matchesAny } from "../spec/glob.ts"
import type { Keys } from "../spec/keys.ts"
import { isAppName } from "../spec/names.ts"
import { decodedOr, type DecodeMemo, readTree } from "../spec/tree.ts"

export interface ReleaseEntry {
  readonly sha: string
  readonly spec: ReleaseSpec
  /** The key's ModifyIndex: a rewrite of the spec makes failed nodes retry. */
  readonly modifyIndex: number
}

export interface AppState {
  readonly app: string
  readonly config: AppConfig | undefined
  /** Newest first (spec/tree.ts `newestFirst`); only specs that decode. */
  readonly releases: ReadonlyArray<ReleaseEntry>
  readonly deploy: { readonly spec: DeploySpec; readonly generation: number } | undefined
  readonly statuses: Readonly<Record<string, NodeStatus>>
  /** Live registered nodes (spec/tree.ts `isAlive`) that match the app's `nodes` globs. */
  readonly expectedNodes: ReadonlyArray<string>
  readonly lock: LockDoc | undefined
  readonly pin: PinDoc | undefined
  readonly problems: ReadonlyArray<string>
  /** The KV index the snapshot was read at. */
  readonly index: number
}

/** Builds a snapshot from already-listed entries (used by watchers too): a projection of the KV tree. */
export const snapshotFrom = (
  keys: Keys,
  app: string,
  appEntries: ReadonlyArray<KvEntry>,
  nodeEntries: ReadonlyArray<KvEntry>,
  index: number,
  memo?: DecodeMemo
): AppState => {
  const tree = readTree(keys, [...appEntries, ...nodeEntries], memo)
  const found = tree.apps.get(app)
  const config = decodedOr(found?.config)
  const releases: ReleaseEntry[] = []
  const statuses: Record<string, NodeStatus> = {}
  for (const [sha, doc] of found?.releases ?? []) {
    const spec = decodedOr(doc)
    if (spec !== undefined) releases.push({ sha, spec, modifyIndex: doc.modifyIndex })
  }
  for (const [node, doc] of found?.statuses ?? []) {
    const status = decodedOr(doc)
    if (status !== undefined) statuses[node] = status
  }
  const deploy = decodedOr(found?.deploy)
  const globs = config?.nodes ?? ["*"]
  return {
    app,
    config,
    releases,
    deploy: deploy === undefined ? undefined : { spec: deploy, generation: found!.deploy!.modifyIndex },
    statuses,
    expectedNodes: [...tree.nodes.keys()].filter((node) => matchesAny(node, globs)).sort(),
    lock: decodedOr(found?.lock),
    pin: decodedOr(found?.pin),
    problems: found?.problems ?? [],
    index
  }
}

export const readApp = (keys: Keys, app: string): Effect.Effect<AppState, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const [appEntries, nodeEntries] = yield* Effect.all([consul.list(keys.app(app)), consul.list(keys.nodes)], {
      concurrency: 2
    })
    return snapshotFrom(keys, app, appEntries.value, nodeEntries.value, appEntries.index)
  })

/** Names of the folders under the prefix that look like apps (reserved `_` names skipped). */
export const appNames = (keys: Keys): Effect.Effect<ReadonlyArray<string>, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const folders = yield* consul.keys(keys.root, "/")
    return folders
      .map((key) => key.slice(keys.root.length).replace(/\/$/, ""))
      .filter(isAppName)
      .sort()
  })

/** Names of every app that has a config key. */
export const listApps = (keys: Keys): Effect.Effect<ReadonlyArray<string>, ConsulError, Consul> =>
  Effect.flatMap(
    appNames(keys),
    (names) =>
      Effect.filter(names, (name) =>
        Consul.use((c) => c.get(keys.config(name))).pipe(Effect.map((e) => e.value !== undefined)), { concurrency: 8 })
  )
