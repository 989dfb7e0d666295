/**
 * The controller's endpoints (docs/contract.md §5), matched by method and path. Health
 * and metrics need no auth; `POST /v1` needs the notify token and `GET /v1` the read
 * token; the webhook carries its own proof (the signature). `admission` decides, from
 * the method, path and headers alone, how large a body each route may send and
 * answers what can be answered without reading it (a missing or wrong token).
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Consul } from "../consul/consul.ts"
import type { Keys } from "../spec/keys.ts"
import { checkBearer } from "./api/bearer.ts"
import { handleNotify } from "./api/notify.ts"
import { handleAppList, handleAppStatus } from "./api/status.ts"
import type { Admission } from "./http/server.ts"
import { MAX_BODY_BYTES } from "./http/server.ts"
import { header, type HttpRequest, type HttpResponse, json, jsonError, type RequestHead, text } from "./http/types.ts"
import type { Metrics } from "./metrics.ts"
import { handlePage, isPagePath } from "./page/endpoint.ts"
import type { PageFeed } from "./page/feed.ts"
import { handleWebhook, WEBHOOKS_OFF } from "./webhook/endpoint.ts"

export interface RouteDeps {
  readonly keys: Keys
  readonly metrics: Metrics
  readonly webhookSecret: Redacted.Redacted<string> | undefined
  readonly previousWebhookSecret?: Redacted.Redacted<string> | undefined
  readonly notifyToken: Redacted.Redacted<string> | undefined
  readonly readToken?: Redacted.Redacted<string> | undefined
  readonly githubAppId: string | undefined
  /** The status page's data (src/controller/page); without it `/` is not served. */
  readonly pageFeed?: PageFeed
}

/** A notify body is a sha, a URL and a checksum: a few hundred bytes. */
const NOTIFY_MAX_BYTES = 64 * 1024

const PAGE_LOGIN_MAX_BYTES = 4 * 1024

const RELEASES_PATH = /^\/v1\/apps\/[^/]+\/releases\/?$/

/** The body limit and early answer of each route, before a byte of the body is read. */
export const admission = (deps: RouteDeps) => (head: RequestHead): Admission => {
  if (head.method === "POST" && head.path === "/github/webhook") {
    // Webhooks off, or no signature: the body cannot matter, so it is not read.
    if (deps.webhookSecret === undefined) return { maxBodyBytes: 0, answer: jsonError(503, WEBHOOKS_OFF) }
    if ((header(head, "x-hub-signature-256") ?? "").trim() === "") {
      return {
        maxBodyBytes: 0,
        answer: jsonError(401, "missing X-Hub-Signature-256 header; set the webhook's secret to GITHUB_WEBHOOK_SECRET")
      }
    }
    return { maxBodyBytes: MAX_BODY_BYTES }
  }
  if (head.method === "POST" && RELEASES_PATH.test(head.path)) {
    const denied = checkBearer(deps.notifyToken, head, "SACAR_NOTIFY_TOKEN")
    if (denied !== undefined) {
      deps.metrics.inc("sacar_notify_total", { result: denied.status === 401 ? "unauthorized" : "off" })
      return { maxBodyBytes: 0, answer: denied }
    }
    return { maxBodyBytes: NOTIFY_MAX_BYTES }
  }
  // The status page's sign-in form: a token, form-encoded.
  if (head.method === "POST" && head.path === "/page/login") return { maxBodyBytes: PAGE_LOGIN_MAX_BYTES }
  return { maxBodyBytes: 0 }
}

const methodNotAllowed = (allowed: string): HttpResponse => ({
  ...jsonError(405, `method not allowed; use ${allowed}`),
  headers: { "content-type": "application/json; charset=utf-8", allow: allowed }
})

/**
 * Ready when Consul answers /v1/status/leader with a leader, within 2 seconds. The
 * answer names no address and no error text (anyone may ask); the log has both.
 */
const readiness = Effect.gen(function*() {
  const consul = yield* Consul
  const leader = yield* consul.leader().pipe(Effect.timeout("2 seconds"), Effect.result)
  if (leader._tag === "Success" && leader.success !== "") return json(200, { ready: true })
  if (leader._tag === "Success") return jsonError(503, "Consul has no leader", { ready: false })
  yield* Effect.logWarning("not ready: Consul is unreachable", {
    consul: consul.address,
    error: leader.failure.message
  })
  return jsonError(503, "Consul is unreachable; see the controller's log", { ready: false })
})

const safeDecode = (segment: string): string => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

const consulFailure = (e: { readonly message: string }) =>
  Effect.as(
    Effect.logError("status not read: Consul failed", { error: e.message }),
    jsonError(503, "Consul could not be read; see the controller's log")
  )

const webhookSecrets = (deps: RouteDeps) =>
  [deps.webhookSecret, deps.previousWebhookSecret].filter((s): s is Redacted.Redacted<string> => s !== undefined)

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
      ? handleWebhook({ ...deps, secrets: webhookSecrets(deps) }, req)
      : Effect.succeed(methodNotAllowed("POST"))
  }
  if (deps.pageFeed !== undefined && isPagePath(path))
    return handlePage({ token: deps.readToken, feed: deps.pageFeed }, req)
  const v1 = /^\/v1\/apps(?:\/([^/]+))?(\/releases)?\/?$/.exec(path)
  if (v1 !== null) {
    const app = v1[1] === undefined ? undefined : safeDecode(v1[1])
    if (v1[2] !== undefined && app !== undefined) {
      if (method !== "POST") return Effect.succeed(methodNotAllowed("POST"))
      // admission() checked the token before the body was read; checked again so the router stands alone.
      const denied = checkBearer(deps.notifyToken, req, "SACAR_NOTIFY_TOKEN")
      return denied !== undefined ? Effect.succeed(denied) : handleNotify(deps, app, req)
    }
    if (method !== "GET") return Effect.succeed(methodNotAllowed("GET"))
    const denied = checkBearer(deps.readToken, req, "SACAR_READ_TOKEN")
    if (denied !== undefined) return Effect.succeed(denied)
    const answer = app === undefined ? handleAppList(deps.keys) : handleAppStatus(deps.keys, app)
    return answer.pipe(Effect.catchTags({ ConsulUnavailable: consulFailure, ConsulRequestError: consulFailure }))
  }
  return Effect.succeed(jsonError(404, `no such endpoint: ${method} ${path}`))
}
