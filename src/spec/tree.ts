/**
 * The one reader of the `sacar/` KV tree: entries as Consul lists them, turned into a
 * typed tree per app plus the live node registrations and the problems found on the
 * way. The node's plan, the controller's reports and `sacar status` are projections
 * of this tree, so they cannot disagree on what a key means, which nodes are alive,
 * or which release is newest.
 *
 * A value that does not decode is kept as a failed `Result` on its key (and a
 * problem, one sentence naming the key), never thrown: one typo must not hide the rest.
 */
import * as Result from "effect/Result"
import type { KvEntry } from "../consul/consul.ts"
import { decodeDocument, type DocumentError } from "./decode.ts"
import { AppConfig, DeploySpec, LockDoc, NodeRegistration, NodeStatus, PinDoc, ReleaseSpec } from "./documents.ts"
import { GitHubRecord } from "./github-record.ts"
import { type Keys, misnamedRelease } from "./keys.ts"
import { PredeployDoc } from "./predeploy.ts"

/** One key's document as read, with the indexes the readers act on (generation, retry). */
export interface KvDocument<A> {
  readonly key: string
  readonly createIndex: number
  readonly modifyIndex: number
  readonly decoded: Result.Result<A, DocumentError>
}

/**
 * The run-once pre-deploy result under `<app>/locks/predeploy/<generation>` (a
 * PredeployDoc): whether it failed, where, and why; "unknown" when it does not decode.
 */
export interface PredeployView {
  readonly generation: number
  readonly state: "running" | "succeeded" | "failed" | "unknown"
  readonly node?: string | undefined
  readonly message?: string | undefined
  readonly log?: string | undefined
}

export interface AppTree {
  readonly app: string
  readonly config: KvDocument<AppConfig> | undefined
  /** By sha, newest first (see `newestFirst`); undecodable specs included. */
  readonly releases: ReadonlyMap<string, KvDocument<ReleaseSpec>>
  readonly deploy: KvDocument<DeploySpec> | undefined
  /** Absent also when the key holds no bytes (see `decodeLock`). */
  readonly lock: KvDocument<LockDoc> | undefined
  readonly pin: KvDocument<PinDoc> | undefined
  readonly statuses: ReadonlyMap<string, KvDocument<NodeStatus>>
  readonly github: ReadonlyMap<string, KvDocument<GitHubRecord>>
  readonly predeploy: ReadonlyMap<number, PredeployView>
  /** Keys under `releases/` that are not a full sha: nothing prepares them (see `misnamedRelease`). */
  readonly misnamed: ReadonlyArray<string>
  /** Every document of the app that did not decode, and the misnamed keys, in key order. */
  readonly problems: ReadonlyArray<string>
}

export interface Tree {
  readonly apps: ReadonlyMap<string, AppTree>
  /** Live registered nodes (see `isLiveRegistration`), by name. */
  readonly nodes: ReadonlyMap<string, NodeRegistration>
  /** The apps' problems and those of live registrations, in the order the keys came. */
  readonly problems: ReadonlyArray<string>
}

/**
 * Decoded documents by key, reused while the key's ModifyIndex is the same. A watcher
 * that rebuilds the tree on every change (the status page) keeps one, so a write to
 * one node's status decodes that document only.
 */
export type DecodeMemo = Map<
  string,
  { readonly modifyIndex: number; readonly decoded: Result.Result<unknown, DocumentError> }
>

/**
 * The order of releases everywhere (the node's plan, `sacar status`, the page):
 * `createdAt` first, newest first; a spec without one (or with one that does not
 * parse) after every spec that has one; then ModifyIndex, newest first; then sha.
 * Why this rule: a sort needs a total order, or two readers of the same KV sort the
 * same releases differently by the order the keys came in. "createdAt when both have
 * one, else ModifyIndex" is not one (a 10:00 spec at index 1, a dateless one at 2 and
 * a 09:00 one at 3 form a cycle). `createdAt` is the only statement of age a writer
 * makes and every Sacar writer sets it (docs/contract.md §3, ReleaseSpec); a spec
 * written by hand without one claims no age, so it does not jump ahead of ones that do.
 */
export const newestFirst = (a: DatedRelease, b: DatedRelease): number => {
  const ta = createdAtMs(a.createdAt)
  const tb = createdAtMs(b.createdAt)
  if (ta !== tb) return tb - ta
  if (a.modifyIndex !== b.modifyIndex) return b.modifyIndex - a.modifyIndex
  return a.sha < b.sha ? -1 : a.sha > b.sha ? 1 : 0
}

export interface DatedRelease {
  readonly sha: string
  readonly modifyIndex: number
  readonly createdAt: string | undefined
}

const createdAtMs = (at: string | undefined): number => {
  const ms = at === undefined ? NaN : Date.parse(at)
  return Number.isNaN(ms) ? -Infinity : ms
}

/**
 * A registration counts as a live node only while a session holds its key: the
 * contract (docs/contract.md §3) binds `_nodes/<node>` to the node's session and has
 * Consul delete it when the session dies, so a key no session holds (written by hand,
 * or left by a Consul that lost its sessions) says nothing about the node being alive.
 */
export const isLiveRegistration = (entry: KvEntry): boolean => entry.session !== undefined

/**
 * The app's lock key: an empty value (a deleted-then-touched key) is no lock, as the
 * nodes have always read it; anything else is a LockDoc or a problem.
 */
export const decodeLock = (entry: KvEntry, memo?: DecodeMemo): KvDocument<LockDoc> | undefined =>
  entry.value === null || entry.value.trim() === "" ? undefined : document(LockDoc, "LockDoc", entry, memo)

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

const document = <A>(
  schema: Parameters<typeof decodeDocument>[0],
  what: string,
  entry: KvEntry,
  memo: DecodeMemo | undefined
): KvDocument<A> => ({
  key: entry.key,
  createIndex: entry.createIndex,
  modifyIndex: entry.modifyIndex,
  decoded: decodeMemo(memo, schema, what, entry) as Result.Result<A, DocumentError>
})

/** The pre-deploy document the reconcilers write (PredeployDoc); anything else is "unknown". */
export const readPredeploy = (generation: number, key: string, raw: string | null): PredeployView => {
  const decoded = decodeDocument(PredeployDoc, "PredeployDoc", key, raw)
  if (Result.isFailure(decoded)) return { generation, state: "unknown", message: decoded.failure.message }
  const doc = decoded.success
  return { generation, state: doc.phase, node: doc.node, message: doc.message, log: doc.log }
}

const RANK: Record<PredeployView["state"], number> = { unknown: 0, running: 1, succeeded: 2, failed: 3 }

interface MutableApp {
  app: string
  config: KvDocument<AppConfig> | undefined
  releases: Map<string, KvDocument<ReleaseSpec>>
  deploy: KvDocument<DeploySpec> | undefined
  lock: KvDocument<LockDoc> | undefined
  pin: KvDocument<PinDoc> | undefined
  statuses: Map<string, KvDocument<NodeStatus>>
  github: Map<string, KvDocument<GitHubRecord>>
  predeploy: Map<number, PredeployView>
  misnamed: string[]
  problems: string[]
}

const problemOf = (doc: KvDocument<unknown> | undefined): string | undefined =>
  doc !== undefined && Result.isFailure(doc.decoded) ? doc.decoded.failure.message : undefined

/** Reads every entry under the prefix (or any subset of it: one app's keys, the registrations). */
export const readTree = (keys: Keys, entries: ReadonlyArray<KvEntry>, memo?: DecodeMemo): Tree => {
  const apps = new Map<string, MutableApp>()
  const nodes = new Map<string, NodeRegistration>()
  const problems: string[] = []
  const appOf = (app: string): MutableApp => {
    let found = apps.get(app)
    if (found === undefined) {
      found = {
        app,
        config: undefined,
        releases: new Map(),
        deploy: undefined,
        lock: undefined,
        pin: undefined,
        statuses: new Map(),
        github: new Map(),
        predeploy: new Map(),
        misnamed: [],
        problems: []
      }
      apps.set(app, found)
    }
    return found
  }
  const note = (app: MutableApp, doc: KvDocument<unknown> | undefined) => {
    const problem = problemOf(doc)
    if (problem === undefined) return
    app.problems.push(problem)
    problems.push(problem)
  }
  for (const entry of entries) {
    const parsed = keys.parse(entry.key)
    switch (parsed.kind) {
      case "node": {
        if (!isLiveRegistration(entry)) break
        const registration = document<NodeRegistration>(NodeRegistration, "NodeRegistration", entry, memo)
        if (Result.isSuccess(registration.decoded)) nodes.set(parsed.node, registration.decoded.success)
        else problems.push(registration.decoded.failure.message)
        break
      }
      case "config": {
        const a = appOf(parsed.app)
        a.config = document(AppConfig, "AppConfig", entry, memo)
        note(a, a.config)
        break
      }
      case "release": {
        const a = appOf(parsed.app)
        const spec = document<ReleaseSpec>(ReleaseSpec, "ReleaseSpec", entry, memo)
        a.releases.set(parsed.sha, spec)
        note(a, spec)
        break
      }
      case "deploy": {
        const a = appOf(parsed.app)
        a.deploy = document(DeploySpec, "DeploySpec", entry, memo)
        note(a, a.deploy)
        break
      }
      case "lock": {
        const a = appOf(parsed.app)
        a.lock = decodeLock(entry, memo)
        note(a, a.lock)
        break
      }
      case "pin": {
        const a = appOf(parsed.app)
        a.pin = document(PinDoc, "PinDoc", entry, memo)
        note(a, a.pin)
        break
      }
      case "status": {
        const a = appOf(parsed.app)
        const status = document<NodeStatus>(NodeStatus, "NodeStatus", entry, memo)
        a.statuses.set(parsed.node, status)
        note(a, status)
        break
      }
      case "github": {
        const a = appOf(parsed.app)
        const record = document<GitHubRecord>(GitHubRecord, "GitHubRecord", entry, memo)
        a.github.set(parsed.sha, record)
        note(a, record)
        break
      }
      case "locks": {
        // `predeploy/<generation>` or a key below it: the most decisive state wins.
        const m = /^predeploy\/(\d+)(?:\/.*)?$/.exec(parsed.rest)
        if (m === null) break
        const generation = Number(m[1])
        const a = appOf(parsed.app)
        const seen = readPredeploy(generation, entry.key, entry.value)
        const before = a.predeploy.get(generation)
        if (before === undefined || RANK[seen.state] > RANK[before.state]) a.predeploy.set(generation, seen)
        break
      }
      case "other": {
        const misnamed = misnamedRelease(keys, entry.key)
        if (misnamed === undefined) break
        const a = appOf(misnamed.app)
        a.misnamed.push(misnamed.message)
        a.problems.push(misnamed.message)
        problems.push(misnamed.message)
        break
      }
      default:
        break
    }
  }
  for (const a of apps.values()) a.releases = sortReleases(a.releases)
  return { apps, nodes, problems }
}

const sortReleases = (releases: Map<string, KvDocument<ReleaseSpec>>): Map<string, KvDocument<ReleaseSpec>> => {
  const dated = (sha: string, doc: KvDocument<ReleaseSpec>): DatedRelease => ({
    sha,
    modifyIndex: doc.modifyIndex,
    createdAt: Result.isSuccess(doc.decoded) ? doc.decoded.success.createdAt : undefined
  })
  return new Map([...releases].sort(([sa, a], [sb, b]) => newestFirst(dated(sa, a), dated(sb, b))))
}

/** The document when it decoded; undefined when absent or not decodable (its problem is in `problems`). */
export const decodedOr = <A>(doc: KvDocument<A> | undefined): A | undefined =>
  doc !== undefined && Result.isSuccess(doc.decoded) ? doc.decoded.success : undefined
