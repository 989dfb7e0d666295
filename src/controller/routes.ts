/**
 * The controller's endpoints (contract section 5), matched by method and path. Health
 * and metrics need no auth; /v1 needs the notify bearer token; the webhook carries
 * its own proof (the signature).
 */
import { Effect, Redacted } from "effect"
import { Consul } from "../consul/Consul.ts"
import type { Keys } from "../spec/keys.ts"
import { checkBearer } from "./api/bearer.ts"
import { handleNotify } from "./api/notify.ts"
import { handleAppList, handleAppStatus } from "./api/status.ts"
import { type HttpRequest, type HttpResponse, json, jsonError, text } from "./http/types.ts"
import type { Metrics } from "./metrics.ts"
import { handlePage, isPagePath } from "./page/endpoint.ts"
import type { PageFeed } from "./page/feed.ts"
import { handleWebhook } from "./webhook/endpoint.ts"

export interface RouteDeps {
  readonly keys: Keys
  readonly metrics: Metrics
  readonly webhookSecret: Redacted.Redacted<string> | undefined
  readonly notifyToken: Redacted.Redacted<string> | undefined
  readonly githubAppId: string | undefined
  /** The status page's data (src/controller/page); without it `/` is not served. */
  readonly pageFeed?: PageFeed
}

const methodNotAllowed = (allowed: string): HttpResponse => ({
  ...jsonError(405, `method not allowed; use ${allowed}`),
  headers: { "content-type": "application/json; charset=utf-8", allow: allowed }
})

/** Ready when Consul answers /v1/status/leader with a leader, within 2 seconds. */
const readiness = Effect.gen(function*() {
  const consul = yield* Consul
  const leader = yield* consul.leader().pipe(Effect.timeout("2 seconds"), Effect.result)
  if (leader._tag === "Success" && leader.success !== "") return json(200, { ready: true, consul: consul.address })
  const why = leader._tag === "Success"
    ? "Consul has no leader"
    : `Consul is unreachable: ${leader.failure.message}`
  return jsonError(503, why, { ready: false, consul: consul.address })
})

const safeDecode = (segment: string): string => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

const consulFailure = (e: { readonly message: string }) => Effect.succeed(jsonError(503, `Consul: ${e.message}`))

export const makeRouter = (deps: RouteDeps) => (req: HttpRequest): Effect.Effect<HttpResponse, never, Consul> => {
  const { path, method } = req
  if (path === "/healthz")
    return Effect.succeed(method === "GET" || method === "HEAD" ? json(200, { ok: true }) : methodNotAllowed("GET"))
  if (path === "/readyz")
    return method === "GET" || method === "HEAD"
      ? readiness
      : Effect.succeed(methodNotAllowed("GET"))
  if (path === "/metrics") {
    return Effect.succeed(
      method === "GET"
        ? text(200, deps.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        : methodNotAllowed("GET")
    )
  }
  if (path === "/github/webhook") {
    return method === "POST"
      ? handleWebhook({ ...deps, secret: deps.webhookSecret }, req)
      : Effect.succeed(methodNotAllowed("POST"))
  }
  if (deps.pageFeed !== undefined && isPagePath(path))
    return handlePage({ token: deps.notifyToken, feed: deps.pageFeed }, req)
  const v1 = /^\/v1\/apps(?:\/([^/]+))?(\/releases)?\/?$/.exec(path)
  if (v1 !== null) {
    const denied = checkBearer(deps.notifyToken, req)
    if (denied !== undefined) {
      if (v1[2] !== undefined)
        deps.metrics.inc("sacar_notify_total", { result: denied.status === 401 ? "unauthorized" : "off" })
      return Effect.succeed(denied)
    }
    const app = v1[1] === undefined ? undefined : safeDecode(v1[1])
    if (v1[2] !== undefined && app !== undefined) {
      return method === "POST" ? handleNotify(deps, app, req) : Effect.succeed(methodNotAllowed("POST"))
    }
    if (method !== "GET") return Effect.succeed(methodNotAllowed("GET"))
    const answer = app === undefined ? handleAppList(deps.keys) : handleAppStatus(deps.keys, app)
    return answer.pipe(Effect.catchTags({ ConsulUnavailable: consulFailure, ConsulRequestError: consulFailure }))
  }
  return Effect.succeed(jsonError(404, `no such endpoint: ${method} ${path}`))
}
