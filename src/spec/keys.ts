/**
 * The KV layout (docs/contract.md §3) in one place: builders for every key and a
 * parser that turns a key seen in a watch back into what it means. Everything else
 * speaks in these terms and never concatenates key strings itself.
 */
import { isAppName, isNodeName, isSha } from "./names.ts"

export const DEFAULT_PREFIX = "sacar"

export type ParsedKey =
  | { readonly kind: "config"; readonly app: string }
  | { readonly kind: "release"; readonly app: string; readonly sha: string }
  | { readonly kind: "deploy"; readonly app: string }
  | { readonly kind: "status"; readonly app: string; readonly node: string }
  | { readonly kind: "lock"; readonly app: string }
  | { readonly kind: "pin"; readonly app: string }
  | { readonly kind: "github"; readonly app: string; readonly sha: string }
  | { readonly kind: "locks"; readonly app: string; readonly rest: string }
  | { readonly kind: "node"; readonly node: string }
  | { readonly kind: "leader" }
  | { readonly kind: "other"; readonly key: string }

export interface Keys {
  readonly prefix: string
  /** `sacar/` : everything Sacar owns, for one watch over all of it. */
  readonly root: string
  readonly app: (app: string) => string
  readonly config: (app: string) => string
  readonly releases: (app: string) => string
  readonly release: (app: string, sha: string) => string
  readonly deploy: (app: string) => string
  readonly statuses: (app: string) => string
  readonly status: (app: string, node: string) => string
  readonly lock: (app: string) => string
  readonly pin: (app: string) => string
  readonly github: (app: string, sha: string) => string
  /** Deploy coordination between reconcilers: the semaphore and the run-once lock. */
  readonly locks: (app: string) => string
  readonly deploySemaphore: (app: string) => string
  readonly predeploy: (app: string, generation: number) => string
  /** Run-once locks of every generation: old ones are removed once a newer one ran. */
  readonly predeploys: (app: string) => string
  /** The first failure of a deploy generation: what halts the nodes after it. */
  readonly halt: (app: string, generation: number) => string
  readonly halts: (app: string) => string
  readonly nodes: string
  readonly node: (node: string) => string
  readonly leader: string
  readonly parse: (key: string) => ParsedKey
}

export const makeKeys = (prefix: string = DEFAULT_PREFIX): Keys => {
  const p = prefix.replace(/\/+$/, "")
  const root = `${p}/`
  const parse = (key: string): ParsedKey => {
    if (!key.startsWith(root)) return { kind: "other", key }
    const parts = key.slice(root.length).split("/")
    const [first, second, third] = parts
    if (first === "_nodes" && parts.length === 2 && isNodeName(second ?? "")) return { kind: "node", node: second! }
    if (first === "_controller" && second === "leader" && parts.length === 2) return { kind: "leader" }
    if (first === undefined || !isAppName(first)) return { kind: "other", key }
    const app = first
    if (parts.length === 2) {
      if (second === "config") return { kind: "config", app }
      if (second === "deploy") return { kind: "deploy", app }
      if (second === "lock") return { kind: "lock", app }
      if (second === "pin") return { kind: "pin", app }
    }
    if (parts.length === 3 && third !== undefined) {
      if (second === "releases" && isSha(third)) return { kind: "release", app, sha: third }
      if (second === "status" && isNodeName(third)) return { kind: "status", app, node: third }
      if (second === "github" && isSha(third)) return { kind: "github", app, sha: third }
    }
    if (second === "locks" && parts.length >= 3) return { kind: "locks", app, rest: parts.slice(2).join("/") }
    return { kind: "other", key }
  }
  return {
    prefix: p,
    root,
    app: (app) => `${p}/${app}/`,
    config: (app) => `${p}/${app}/config`,
    releases: (app) => `${p}/${app}/releases/`,
    release: (app, sha) => `${p}/${app}/releases/${sha}`,
    deploy: (app) => `${p}/${app}/deploy`,
    statuses: (app) => `${p}/${app}/status/`,
    status: (app, node) => `${p}/${app}/status/${node}`,
    lock: (app) => `${p}/${app}/lock`,
    pin: (app) => `${p}/${app}/pin`,
    github: (app, sha) => `${p}/${app}/github/${sha}`,
    locks: (app) => `${p}/${app}/locks/`,
    deploySemaphore: (app) => `${p}/${app}/locks/deploy`,
    predeploy: (app, generation) => `${p}/${app}/locks/predeploy/${generation}`,
    predeploys: (app) => `${p}/${app}/locks/predeploy/`,
    halt: (app, generation) => `${p}/${app}/locks/halt/${generation}`,
    halts: (app) => `${p}/${app}/locks/halt/`,
    nodes: `${p}/_nodes/`,
    node: (node) => `${p}/_nodes/${node}`,
    leader: `${p}/_controller/leader`,
    parse
  }
}

/**
 * A key under `<app>/releases/` whose last part is not a full sha (`consul kv put
 * sacar/shop/releases/1ff1a40 '{}'`): nothing acts on it, so it is reported instead of
 * ignored, as one sentence naming the key and the fix.
 */
export const misnamedRelease = (keys: Keys, key: string): { app: string; message: string } | undefined => {
  if (!key.startsWith(keys.root)) return undefined
  const parts = key.slice(keys.root.length).split("/")
  const [app, folder, name] = parts
  if (parts.length !== 3 || folder !== "releases" || app === undefined || !isAppName(app)) return undefined
  if (name === undefined || name === "" || isSha(name)) return undefined
  return {
    app,
    message: `${key}: ${
      JSON.stringify(name)
    } is not a full commit sha (40 lowercase hex characters), so no node prepares it; write the ReleaseSpec under ${
      keys.releases(app)
    }<full sha> and delete this key`
  }
}
