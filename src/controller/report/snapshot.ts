/**
 * One read of everything under the KV prefix, turned into documents grouped by app.
 * The report loop is level-based: every pass starts from a fresh Snapshot and never
 * from the event that woke it. Values that do not decode are kept as problems (and
 * logged once by the loop), never thrown: one operator's typo must not stop reports
 * for every other app.
 */
import { Result } from "effect"
import type { KvEntry } from "../../consul/Consul.ts"
import { decodeDocument } from "../../spec/decode.ts"
import {
  AppConfig,
  DeploySpec,
  LockDoc,
  NodeRegistration,
  NodeStatus,
  PinDoc,
  ReleaseSpec
} from "../../spec/documents.ts"
import { GitHubRecord } from "../../spec/github-record.ts"
import type { Keys } from "../../spec/keys.ts"
import { PredeployDoc } from "../../spec/predeploy.ts"

export interface Versioned<A> {
  readonly doc: A
  readonly createIndex: number
  readonly modifyIndex: number
}

/**
 * The run-once pre-deploy result under `<prefix>/<app>/locks/predeploy/<generation>`
 * (a PredeployDoc): the reporter only needs to know whether it failed, where, and why.
 */
export interface PredeployView {
  readonly generation: number
  readonly state: "running" | "succeeded" | "failed" | "unknown"
  readonly node?: string | undefined
  readonly message?: string | undefined
  readonly log?: string | undefined
}

export interface AppSnapshot {
  readonly app: string
  /** undefined: no config, or one that does not decode (see `problems`). */
  readonly config: AppConfig | undefined
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
  /** Live registered nodes (their `_nodes/<node>` key exists, held by a session). */
  readonly nodes: ReadonlySet<string>
  /** "<key>: <why>" for every value that did not decode. */
  readonly problems: ReadonlyArray<string>
}

interface MutableApp {
  app: string
  config: AppConfig | undefined
  releases: Map<string, Versioned<ReleaseSpec>>
  deploy: (Versioned<DeploySpec> & { generation: number }) | undefined
  statuses: Map<string, NodeStatus>
  lock: LockDoc | undefined
  pin: PinDoc | undefined
  github: Map<string, Versioned<GitHubRecord>>
  predeploy: Map<number, PredeployView>
}

const emptyApp = (app: string): MutableApp => ({
  app,
  config: undefined,
  releases: new Map(),
  deploy: undefined,
  statuses: new Map(),
  lock: undefined,
  pin: undefined,
  github: new Map(),
  predeploy: new Map()
})

/** The pre-deploy document the reconcilers write (PredeployDoc); anything else is "unknown". */
export const readPredeploy = (generation: number, key: string, raw: string | null): PredeployView => {
  const decoded = decodeDocument(PredeployDoc, "PredeployDoc", key, raw)
  if (Result.isFailure(decoded)) return { generation, state: "unknown", message: decoded.failure.message }
  const doc = decoded.success
  return { generation, state: doc.phase, node: doc.node, message: doc.message, log: doc.log }
}

const RANK: Record<PredeployView["state"], number> = { unknown: 0, running: 1, succeeded: 2, failed: 3 }

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

export const readSnapshot = (keys: Keys, index: number, entries: ReadonlyArray<KvEntry>): Snapshot => {
  const apps = new Map<string, MutableApp>()
  const nodes = new Set<string>()
  const problems: string[] = []
  const appOf = (app: string) => {
    let a = apps.get(app)
    if (a === undefined) {
      a = emptyApp(app)
      apps.set(app, a)
    }
    return a
  }
  for (const entry of entries) {
    const parsed = keys.parse(entry.key)
    const versioned = <A>(doc: A): Versioned<A> => ({
      doc,
      createIndex: entry.createIndex,
      modifyIndex: entry.modifyIndex
    })
    switch (parsed.kind) {
      case "node": {
        // Only a key held by a session is a live registration; Consul deletes it when the session dies.
        if (entry.session === undefined) break
        const reg = decodeDocument(NodeRegistration, "NodeRegistration", entry.key, entry.value)
        if (Result.isSuccess(reg)) nodes.add(parsed.node)
        else problems.push(reg.failure.message)
        break
      }
      case "config": {
        const a = appOf(parsed.app)
        const r = decodeDocument(AppConfig, "AppConfig", entry.key, entry.value)
        if (Result.isSuccess(r)) a.config = r.success
        else problems.push(r.failure.message)
        break
      }
      case "release": {
        const r = decodeDocument(ReleaseSpec, "ReleaseSpec", entry.key, entry.value)
        // A release that does not decode is still a release: the reconcilers report it failed.
        appOf(parsed.app).releases.set(parsed.sha, versioned(Result.isSuccess(r) ? r.success : {}))
        if (Result.isFailure(r)) problems.push(r.failure.message)
        break
      }
      case "deploy": {
        const r = decodeDocument(DeploySpec, "DeploySpec", entry.key, entry.value)
        if (Result.isSuccess(r)) appOf(parsed.app).deploy = { ...versioned(r.success), generation: entry.modifyIndex }
        else problems.push(r.failure.message)
        break
      }
      case "status": {
        const r = decodeDocument(NodeStatus, "NodeStatus", entry.key, entry.value)
        if (Result.isSuccess(r)) appOf(parsed.app).statuses.set(parsed.node, r.success)
        else problems.push(r.failure.message)
        break
      }
      case "lock": {
        const r = decodeDocument(LockDoc, "LockDoc", entry.key, entry.value)
        if (Result.isSuccess(r)) appOf(parsed.app).lock = r.success
        else problems.push(r.failure.message)
        break
      }
      case "pin": {
        const r = decodeDocument(PinDoc, "PinDoc", entry.key, entry.value)
        if (Result.isSuccess(r)) appOf(parsed.app).pin = r.success
        else problems.push(r.failure.message)
        break
      }
      case "github": {
        const r = decodeDocument(GitHubRecord, "GitHubRecord", entry.key, entry.value)
        if (Result.isSuccess(r)) appOf(parsed.app).github.set(parsed.sha, versioned(r.success))
        else problems.push(r.failure.message)
        break
      }
      case "locks": {
        // `predeploy/<generation>` or a key below it: the most decisive state wins.
        const m = /^predeploy\/(\d+)(?:\/.*)?$/.exec(parsed.rest)
        if (m !== null) {
          const generation = Number(m[1])
          const a = appOf(parsed.app)
          const seen = readPredeploy(generation, entry.key, entry.value)
          const before = a.predeploy.get(generation)
          if (before === undefined || RANK[seen.state] > RANK[before.state]) a.predeploy.set(generation, seen)
        }
        break
      }
      default:
        break
    }
  }
  return { index, apps, nodes, problems }
}
