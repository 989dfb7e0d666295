/**
 * `GET /v1/apps` and `GET /v1/apps/<app>`: what Consul holds for an app, decoded with
 * the same schemas the reconcilers use. A document that does not decode is shown with
 * its error instead of failing the whole answer: this is where an operator looks
 * when something is wrong.
 */
import { Effect, Result } from "effect"
import type { Schema } from "effect"
import { Consul } from "../../consul/Consul.ts"
import type { ConsulError, KvEntry } from "../../consul/Consul.ts"
import { decodeDocument } from "../../spec/decode.ts"
import { AppConfig, DeploySpec, LockDoc, lockInForce, NodeStatus, PinDoc, ReleaseSpec } from "../../spec/documents.ts"
import type { Keys } from "../../spec/keys.ts"
import { isAppName } from "../../spec/names.ts"
import { appNames } from "../apps.ts"
import { json, jsonError, type HttpResponse } from "../http/types.ts"

type Decoded<A> = A | { readonly error: string }

const decodeEntry = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, what: string, entry: KvEntry): Decoded<S["Type"]> => {
  const decoded = decodeDocument(schema, what, entry.key, entry.value)
  return Result.isSuccess(decoded) ? decoded.success : { error: decoded.failure.message }
}

export interface AppStatus {
  readonly app: string
  readonly config: Decoded<AppConfig> | null
  readonly releases: Readonly<Record<string, Decoded<ReleaseSpec> & { readonly index?: number }>>
  readonly deploy: (Decoded<DeploySpec> & { readonly generation: number }) | null
  readonly nodes: Readonly<Record<string, Decoded<NodeStatus>>>
  readonly lock: (Decoded<LockDoc> & { readonly inForce?: boolean }) | null
  readonly pin: Decoded<PinDoc> | null
}

/** Everything under `<prefix>/<app>/` except the controller's and reconcilers' internals. */
export const appStatus = (keys: Keys, app: string): Effect.Effect<AppStatus | undefined, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const entries = (yield* consul.list(keys.app(app))).value
    if (entries.length === 0) return undefined
    let config: AppStatus["config"] = null
    let deploy: AppStatus["deploy"] = null
    let lock: AppStatus["lock"] = null
    let pin: AppStatus["pin"] = null
    const releases: Record<string, Decoded<ReleaseSpec> & { index?: number }> = {}
    const nodes: Record<string, Decoded<NodeStatus>> = {}
    for (const entry of entries) {
      const parsed = keys.parse(entry.key)
      switch (parsed.kind) {
        case "config":
          config = decodeEntry(AppConfig, "AppConfig", entry)
          break
        case "release":
          releases[parsed.sha] = { ...decodeEntry(ReleaseSpec, "ReleaseSpec", entry), index: entry.modifyIndex }
          break
        case "deploy":
          deploy = { ...decodeEntry(DeploySpec, "DeploySpec", entry), generation: entry.modifyIndex }
          break
        case "status":
          nodes[parsed.node] = decodeEntry(NodeStatus, "NodeStatus", entry)
          break
        case "lock": {
          const doc = decodeEntry(LockDoc, "LockDoc", entry)
          lock = "error" in doc ? doc : { ...doc, inForce: lockInForce(doc, new Date()) }
          break
        }
        case "pin":
          pin = decodeEntry(PinDoc, "PinDoc", entry)
          break
        default:
          break
      }
    }
    if (config === null && Object.keys(releases).length === 0 && deploy === null && Object.keys(nodes).length === 0) return undefined
    return { app, config, releases, deploy, nodes, lock, pin }
  })

export const handleAppStatus = (keys: Keys, app: string): Effect.Effect<HttpResponse, ConsulError, Consul> =>
  Effect.gen(function*() {
    if (!isAppName(app)) return jsonError(404, `no app ${JSON.stringify(app)}: not a valid app name`)
    const status = yield* appStatus(keys, app)
    return status === undefined ? jsonError(404, `no app ${JSON.stringify(app)} under ${keys.prefix}/`) : json(200, status)
  })

export const handleAppList = (keys: Keys): Effect.Effect<HttpResponse, ConsulError, Consul> =>
  Effect.gen(function*() {
    const names = yield* appNames(keys)
    const statuses = yield* Effect.forEach(names, (name) => appStatus(keys, name), { concurrency: 4 })
    return json(200, { prefix: keys.prefix, apps: statuses.filter((s) => s !== undefined) })
  })
