/**
 * `POST /github/webhook`: signature first (401, nothing parsed or written), then JSON
 * (400), then the event's handler. Handled events answer 200, events Sacar does not
 * act on 202, so GitHub's delivery log shows at a glance which deliveries mattered.
 */
import { Effect, Redacted } from "effect"
import type { Consul } from "../../consul/Consul.ts"
import { header, type HttpRequest, type HttpResponse, json, jsonError } from "../http/types.ts"
import type { Metrics } from "../metrics.ts"
import { HANDLERS, type WebhookContext } from "./handlers.ts"
import { checkSignature } from "./signature.ts"

export interface WebhookEndpoint extends WebhookContext {
  /** undefined: webhooks are off (no GITHUB_WEBHOOK_SECRET); every delivery gets 503. */
  readonly secret: Redacted.Redacted<string> | undefined
  readonly metrics: Metrics
}

export const WEBHOOKS_OFF =
  "webhooks are off: this controller has no GITHUB_WEBHOOK_SECRET (or GITHUB_WEBHOOK_SECRET_FILE); set it to the webhook's secret and restart"

export const handleWebhook = (
  endpoint: WebhookEndpoint,
  req: HttpRequest
): Effect.Effect<HttpResponse, never, Consul> =>
  Effect.gen(function*() {
    const event = header(req, "x-github-event")?.trim() || "unknown"
    const delivery = header(req, "x-github-delivery")?.trim() || undefined
    const count = (result: string) =>
      endpoint.metrics.inc("sacar_webhooks_total", { event: event in HANDLERS ? event : "other", result })
    if (endpoint.secret === undefined) {
      count("off")
      return jsonError(503, WEBHOOKS_OFF)
    }
    const raw = req.body.toString("utf8")
    const signature = yield* checkSignature(endpoint.secret, raw, header(req, "x-hub-signature-256"))
    if (!signature.ok) {
      count("unauthorized")
      yield* Effect.logWarning("webhook rejected", { event, delivery, reason: signature.error })
      return jsonError(401, signature.error)
    }
    let body: unknown
    try {
      body = JSON.parse(raw)
    } catch (cause) {
      count("bad_request")
      return jsonError(400, `the body is not JSON: ${(cause as Error).message}`)
    }
    if (header(req, "x-github-event") === undefined) {
      count("bad_request")
      return jsonError(400, "missing X-GitHub-Event header")
    }
    const handler = HANDLERS[event]
    if (handler === undefined) {
      count("ignored")
      yield* Effect.logDebug("webhook ignored", { event, delivery })
      return json(202, { event, delivery, result: "ignored", reason: `Sacar does not act on ${event} events` })
    }
    const action = typeof (body as { action?: unknown } | null)?.action === "string"
      ? (body as { action: string }).action
      : undefined
    return yield* handler(endpoint, body).pipe(
      Effect.map((outcome) => {
        count(outcome.result)
        return json(outcome.result === "ignored" ? 202 : 200, { event, action, delivery, ...outcome })
      }),
      Effect.tap((response) => Effect.logInfo("webhook", { event, action, delivery, status: response.status })),
      Effect.catchTags({
        PayloadError: (e) => {
          count("bad_request")
          return Effect.succeed(jsonError(400, e.message))
        },
        ConsulUnavailable: (e) => {
          count("error")
          return Effect.as(
            Effect.logError("webhook not stored: Consul is unavailable", { event, delivery, error: e.message }),
            jsonError(503, `Consul is unavailable (${e.message}); nothing was written, GitHub may redeliver`)
          )
        },
        ConsulRequestError: (e) => {
          count("error")
          return Effect.as(
            Effect.logError("webhook not stored: Consul refused a request", { event, delivery, error: e.message }),
            jsonError(503, `Consul refused ${e.operation} (${e.status}): ${e.message}`)
          )
        },
        WriteConflict: (e) => {
          count("error")
          return Effect.succeed(jsonError(503, e.message))
        }
      })
    )
  })
