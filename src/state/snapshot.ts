/**
 * Everything Sacar knows about one app, read in two requests (the app's prefix and
 * the node registrations) and decoded with the schemas. Documents that do not decode
 * are kept as `problems` (one sentence each) instead of failing the whole read: the
 * CLI and the status endpoint must still show the rest.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Consul } from "../consul/Consul.ts"
import type { ConsulError, KvEntry } from "../consul/Consul.ts"
import { decodeDocument, type DocumentError } from "../spec/decode.ts"
import { AppConfig, DeploySpec, LockDoc, NodeRegistration, NodeStatus, PinDoc, ReleaseSpec } from "../spec/documents.ts"
import { matchesAny } from "../spec/glob.ts"
import { type Keys, misnamedRelease } from "../spec/keys.ts"
import { isAppName } from "../spec/names.ts"

export interface ReleaseEntry {
  readonly sha: string
  readonly spec: ReleaseSpec
  /** The key's ModifyIndex: a rewrite of the spec makes failed nodes retry. */
  readonly modifyIndex: number
}

export interface AppSnapshot {
  readonly app: string
  readonly config: AppConfig | undefined
  /** Newest first (createdAt, then ModifyIndex). */
  readonly releases: ReadonlyArray<ReleaseEntry>
  readonly deploy: { readonly spec: DeploySpec; readonly generation: number } | undefined
  readonly statuses: Readonly<Record<string, NodeStatus>>
  /** Live registered nodes that match the app's `nodes` globs. */
  readonly expectedNodes: ReadonlyArray<string>
  readonly lock: LockDoc | undefined
  readonly pin: PinDoc | undefined
  readonly problems: ReadonlyArray<string>
  /** The KV index the snapshot was read at. */
  readonly index: number
}

/**
 * Decoded documents by key, reused while the key's ModifyIndex is the same. A watcher
 * that rebuilds snapshots on every change (the status page) keeps one, so a write to
 * one node's status decodes that document only.
 */
export type DecodeMemo = Map<
  string,
  { readonly modifyIndex: number; readonly decoded: Result.Result<unknown, DocumentError> }
>

const decodeMemo = (
  memo: DecodeMemo | undefined,
  schema: Parameters<typeof decodeDocument>[0],
  what: string,
  entry: KvEntry
): Result.Result<unknown, DocumentError> => {
  const known = memo?.get(entry.key)
  if (known !== undefined && known.modifyIndex === entry.modifyIndex) return known.decoded
  const decoded = decodeDocument(schema, what, entry.key, entry.value)
  memo?.set(entry.key, { modifyIndex: entry.modifyIndex, decoded })
  return decoded
}

const decodeInto = <A>(
  problems: string[],
  schema: Parameters<typeof decodeDocument>[0],
  what: string,
  entry: KvEntry,
  memo?: DecodeMemo
): A | undefined => {
  const decoded = decodeMemo(memo, schema, what, entry)
  if (Result.isSuccess(decoded)) return decoded.success as A
  problems.push(decoded.failure.message)
  return undefined
}

export const newestFirst = (a: ReleaseEntry, b: ReleaseEntry): number => {
  const at = Date.parse(a.spec.createdAt ?? "") || 0
  const bt = Date.parse(b.spec.createdAt ?? "") || 0
  return bt - at || b.modifyIndex - a.modifyIndex
}

/** Builds a snapshot from already-listed entries (used by watchers too). */
export const snapshotFrom = (
  keys: Keys,
  app: string,
  appEntries: ReadonlyArray<KvEntry>,
  nodeEntries: ReadonlyArray<KvEntry>,
  index: number,
  memo?: DecodeMemo
): AppSnapshot => {
  const problems: string[] = []
  let config: AppConfig | undefined
  let deploy: AppSnapshot["deploy"]
  let lock: LockDoc | undefined
  let pin: PinDoc | undefined
  const releases: ReleaseEntry[] = []
  const statuses: Record<string, NodeStatus> = {}
  for (const entry of appEntries) {
    const parsed = keys.parse(entry.key)
    const misnamed = misnamedRelease(keys, entry.key)
    if (misnamed?.app === app) problems.push(misnamed.message)
    if (!("app" in parsed) || parsed.app !== app) continue
    switch (parsed.kind) {
      case "config":
        config = decodeInto(problems, AppConfig, "AppConfig", entry, memo)
        break
      case "release": {
        const spec = decodeInto<ReleaseSpec>(problems, ReleaseSpec, "ReleaseSpec", entry, memo)
        if (spec !== undefined) releases.push({ sha: parsed.sha, spec, modifyIndex: entry.modifyIndex })
        break
      }
      case "deploy": {
        const spec = decodeInto<DeploySpec>(problems, DeploySpec, "DeploySpec", entry, memo)
        if (spec !== undefined) deploy = { spec, generation: entry.modifyIndex }
        break
      }
      case "status": {
        const status = decodeInto<NodeStatus>(problems, NodeStatus, "NodeStatus", entry, memo)
        if (status !== undefined) statuses[parsed.node] = status
        break
      }
      case "lock":
        lock = decodeInto(problems, LockDoc, "LockDoc", entry, memo)
        break
      case "pin":
        pin = decodeInto(problems, PinDoc, "PinDoc", entry, memo)
        break
    }
  }
  const globs = config?.nodes ?? ["*"]
  const expectedNodes: string[] = []
  for (const entry of nodeEntries) {
    const parsed = keys.parse(entry.key)
    if (parsed.kind !== "node") continue
    const registration = decodeMemo(memo, NodeRegistration, "NodeRegistration", entry)
    if (Result.isSuccess(registration) && matchesAny(parsed.node, globs)) expectedNodes.push(parsed.node)
  }
  releases.sort(newestFirst)
  return { app, config, releases, deploy, statuses, expectedNodes: expectedNodes.sort(), lock, pin, problems, index }
}

export const readApp = (keys: Keys, app: string): Effect.Effect<AppSnapshot, ConsulError, Consul> =>
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
