/**
 * The bearer tokens of the /v1 endpoints: SACAR_NOTIFY_TOKEN for `POST .../releases`
 * (CI), SACAR_READ_TOKEN for the `GET` status (people, dashboards), so the token CI
 * holds cannot read every app. Both sides are hashed before the constant-time
 * compare, so neither the token's content nor its length leaks through timing.
 */
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import { header, type HttpResponse, jsonError, type RequestHead } from "../http/types.ts"

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** Which token a route takes, by the variable that sets it. */
export type TokenName = "SACAR_NOTIFY_TOKEN" | "SACAR_READ_TOKEN"

export const tokenOff = (name: TokenName) =>
  `this endpoint is off: the controller has no ${name} (or ${name}_FILE); set one and restart`

/** undefined when the request may go on; otherwise the answer to send (401, or 503 when off). */
export const checkBearer = (
  token: Redacted.Redacted<string> | undefined,
  req: RequestHead,
  name: TokenName = "SACAR_NOTIFY_TOKEN"
): HttpResponse | undefined => {
  if (token === undefined) return jsonError(503, tokenOff(name))
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header(req, "authorization") ?? "")
  if (match === null) {
    return {
      ...jsonError(401, `missing bearer token: send Authorization: Bearer <${name}>`),
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
