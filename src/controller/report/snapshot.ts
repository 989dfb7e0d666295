/**
 * One read of everything under the KV prefix, projected from the KV tree
 * (spec/tree.ts) into the documents the reporter uses, grouped by app. The report
 * loop is level-based: every pass starts from a fresh Snapshot and never from the
 * event that woke it. Values that do not decode are kept as problems (and logged once
 * by the loop), never thrown: one operator's typo must not stop reports for every
 * other app.
 */
import * as Result from "effect/Result"
import type { KvEntry } from "../../consul/consul.ts"
import type { AppConfig, DeploySpec, LockDoc, NodeStatus, PinDoc, ReleaseSpec } from "../../spec/documents.ts"
import type { GitHubRecord } from "../../spec/github-record.ts"
import type { Keys } from "../../spec/keys.ts"
import { decodedOr, type DecodeMemo, type KvDocument, type PredeployView, readTree } from "../../spec/tree.ts"

export interface Versioned<A> {
  readonly doc: A
  readonly createIndex: number
  readonly modifyIndex: number
}

export interface AppSnapshot {
  readonly app: string
  /** undefined: no config, or one that does not decode (see `problems`). */
  readonly config: AppConfig | undefined
  /** Newest first (spec/tree.ts `newestFirst`). */
  readonly releases: ReadonlyMap<string, Versioned<ReleaseSpec>>
  readonly deploy: (Versioned<DeploySpec> & { readonly generation: number }) | undefined
  readonly statuses: ReadonlyMap<string, NodeStatus>
  readonly lock: LockDoc | undefined
  readonly pin: PinDoc | undefined
  readonly github: ReadonlyMap<string, Versioned<GitHubRecord>>
  readonly predeploy: ReadonlyMap<number, PredeployView>
}

export interface Snapshot {
  /** The X-Consul-Index the list was served at. */
  readonly index: number
  readonly apps: ReadonlyMap<string, AppSnapshot>
  /** Live registered nodes (spec/tree.ts `isAlive`). */
  readonly nodes: ReadonlySet<string>
  /** "<key>: <why>" for every value that did not decode, and misnamed release keys. */
  readonly problems: ReadonlyArray<string>
}

const versioned = <A>(doc: KvDocument<A>, value: A): Versioned<A> => ({
  doc: value,
  createIndex: doc.createIndex,
  modifyIndex: doc.modifyIndex
})

/** Every decoded document of `docs`, by key, with its indexes. */
const decodedMap = <K, A>(docs: ReadonlyMap<K, KvDocument<A>>): Map<K, Versioned<A>> => {
  const out = new Map<K, Versioned<A>>()
  for (const [k, doc] of docs) if (Result.isSuccess(doc.decoded)) out.set(k, versioned(doc, doc.decoded.success))
  return out
}

/**
 * Joins Snapshots read from disjoint groups of keys (one per app, one of the node
 * registrations): the report loop decodes each group when it changes and keeps the
 * others as they were.
 */
export const joinSnapshots = (parts: Iterable<Snapshot>): Snapshot => {
  let index = 0
  const apps = new Map<string, AppSnapshot>()
  const nodes = new Set<string>()
  const problems: string[] = []
  for (const part of parts) {
    index = Math.max(index, part.index)
    for (const [name, app] of part.apps) apps.set(name, app)
    for (const node of part.nodes) nodes.add(node)
    problems.push(...part.problems)
  }
  return { index, apps, nodes, problems }
}

/** `memo` keeps decoded documents between reads of the same group: only changed ones are decoded again. */
export const readSnapshot = (
  keys: Keys,
  index: number,
  entries: ReadonlyArray<KvEntry>,
  memo?: DecodeMemo
): Snapshot => {
  const tree = readTree(keys, entries, memo)
  const apps = new Map<string, AppSnapshot>()
  for (const [app, a] of tree.apps) {
    const deploy = decodedOr(a.deploy)
    apps.set(app, {
      app,
      config: decodedOr(a.config),
      // A release that does not decode is still a release: the reconcilers report it failed.
      releases: new Map([...a.releases].map(([sha, doc]) => [sha, versioned(doc, decodedOr(doc) ?? {})])),
      deploy: a.deploy === undefined || deploy === undefined
        ? undefined
        : { ...versioned(a.deploy, deploy), generation: a.deploy.modifyIndex },
      statuses: new Map([...decodedMap(a.statuses)].map(([node, s]) => [node, s.doc])),
      lock: decodedOr(a.lock),
      pin: decodedOr(a.pin),
      github: decodedMap(a.github),
      predeploy: a.predeploy
    })
  }
  return { index, apps, nodes: new Set(tree.nodes.keys()), problems: tree.problems }
}
