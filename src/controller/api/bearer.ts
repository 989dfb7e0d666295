/**
 * The bearer token of the /v1 endpoints (SACAR_NOTIFY_TOKEN). Both sides are hashed
 * before the constant-time compare, so neither the token's content nor its length
 * leaks through timing.
 */
import { Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { header, type HttpRequest, type HttpResponse, jsonError } from "../http/types.ts"

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

export const NOTIFY_OFF =
  "the /v1 endpoints are off: this controller has no SACAR_NOTIFY_TOKEN (or SACAR_NOTIFY_TOKEN_FILE); set one and restart"

/** undefined when the request may go on; otherwise the answer to send (401, or 503 when off). */
export const checkBearer = (
  token: Redacted.Redacted<string> | undefined,
  req: HttpRequest
): HttpResponse | undefined => {
  if (token === undefined) return jsonError(503, NOTIFY_OFF)
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header(req, "authorization") ?? "")
  if (match === null) {
    return {
      ...jsonError(401, "missing bearer token: send Authorization: Bearer <SACAR_NOTIFY_TOKEN>"),
      headers: { "content-type": "application/json; charset=utf-8", "www-authenticate": "Bearer realm=\"sacar\"" }
    }
  }
  if (!timingSafeEqual(digest(match[1]!), digest(Redacted.value(token)))) {
    return {
      ...jsonError(401, "wrong bearer token"),
      headers: {
        "content-type": "application/json; charset=utf-8",
        "www-authenticate": "Bearer realm=\"sacar\", error=\"invalid_token\""
      }
    }
  }
  return undefined
}
