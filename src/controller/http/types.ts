/**
 * The small request/response model the controller's routes speak. The server reads
 * the whole body (bounded by the route's limit) before a route runs, because webhook
 * signatures are checked over the exact raw bytes and every body here is small JSON.
 */
import type { IncomingHttpHeaders } from "node:http"

/** What is known of a request before its body is read. */
export interface RequestHead {
  readonly method: string
  /** The path without the query string, e.g. "/v1/apps/shop". */
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: IncomingHttpHeaders
}

export interface HttpRequest extends RequestHead {
  readonly body: Buffer
}

export interface HttpResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export const json = (status: number, value: unknown): HttpResponse => ({
  status,
  headers: { "content-type": "application/json; charset=utf-8" },
  body: `${JSON.stringify(value, null, 2)}\n`
})

/** Every error answer has this one shape: `{"error": "..."}`. */
export const jsonError = (status: number, error: string, extra: Readonly<Record<string, unknown>> = {}): HttpResponse =>
  json(status, { error, ...extra })

export const text = (status: number, body: string, contentType = "text/plain; charset=utf-8"): HttpResponse => ({
  status,
  headers: { "content-type": contentType },
  body
})

/** A header's single value; repeated headers are joined by Node with ", " except set-cookie. */
export const header = (req: RequestHead, name: string): string | undefined => {
  const value = req.headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}
