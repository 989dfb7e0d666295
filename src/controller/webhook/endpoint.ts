/**
 * `POST /github/webhook`: signature first (401, nothing parsed or written), then JSON
 * (400), then the event's handler. Handled events answer 200, events Sacar does not
 * act on 202, so GitHub's delivery log shows at a glance which deliveries mattered.
 * Errors are logged in full but answered in general terms: the caller may be anyone
 * on the network, and Consul's address or error text is none of its business.
 */
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { Consul } from "../../consul/consul.ts"
import { header, type HttpRequest, type HttpResponse, json, jsonError } from "../http/types.ts"
import type { Metrics } from "../metrics.ts"
import { HANDLERS, type WebhookContext } from "./handlers.ts"
import { checkSignature } from "./signature.ts"

export interface WebhookEndpoint extends WebhookContext {
  /** The current secret first, then the previous one; empty: webhooks are off (503). */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
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
      endpoint.metrics.inc("sacar_webhooks_total", { event: HANDLERS.has(event) ? event : "other", result })
    if (endpoint.secrets.length === 0) {
      count("off")
      return jsonError(503, WEBHOOKS_OFF)
    }
    const signature = checkSignature(endpoint.secrets, req.body, header(req, "x-hub-signature-256"))
    if (!signature.ok) {
      count("unauthorized")
      yield* Effect.logWarning("webhook rejected", { event, delivery, reason: signature.error })
      return jsonError(401, signature.error)
    }
    let body: unknown
    try {
      body = JSON.parse(req.body.toString("utf8"))
    } catch (cause) {
      count("bad_request")
      return jsonError(400, `the body is not JSON: ${(cause as Error).message}`)
    }
    if (header(req, "x-github-event") === undefined) {
      count("bad_request")
      return jsonError(400, "missing X-GitHub-Event header")
    }
    const handler = HANDLERS.get(event)
    if (handler === undefined) {
      count("ignored")
      yield* Effect.logDebug("webhook ignored", { event, delivery })
      return json(202, { event, delivery, result: "ignored", reason: `Sacar does not act on ${event} events` })
    }
    const action = typeof (body as { action?: unknown } | null)?.action === "string"
      ? (body as { action: string }).action
      : undefined
    const unstored = (what: string, error: string) => {
      count("error")
      return Effect.as(
        Effect.logError(`webhook not stored: ${what}`, { event, delivery, error }),
        jsonError(
          503,
          `the controller could not store this delivery (${what}); nothing was written, GitHub may redeliver`
        )
      )
    }
    return yield* handler(endpoint, body, { event, id: delivery }).pipe(
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
        ConsulUnavailable: (e) => unstored("Consul is unavailable", e.message),
        ConsulRequestError: (e) => unstored("Consul refused a request", `${e.operation} (${e.status}): ${e.message}`),
        WriteConflict: (e) => unstored("concurrent writes", e.message),
        DeployNotWritten: (e) => unstored("Consul refused the deploy", e.message)
      })
    )
  })
