/**
 * `X-Hub-Signature-256` checking, done on the raw body before anything parses it. A
 * body that was cut short, re-encoded or tampered with fails here, so no handler ever
 * sees bytes GitHub did not sign. The HMAC runs over the body's bytes as received (no
 * copy into a string first: an unauthenticated body costs nothing more than its
 * buffer). During a secret rotation two secrets are accepted (GITHUB_WEBHOOK_SECRET
 * and GITHUB_WEBHOOK_SECRET_PREVIOUS): GitHub signs with the new one as soon as it is
 * saved, deliveries already queued carry the old one.
 */
import * as Redacted from "effect/Redacted"
import { createHmac, timingSafeEqual } from "node:crypto"

export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly error: string }

const SIGNATURE = /^sha256=([0-9a-f]{64})$/

export const checkSignature = (
  secrets: ReadonlyArray<Redacted.Redacted<string>>,
  rawBody: Buffer,
  signature: string | undefined
): SignatureCheck => {
  if (signature === undefined || signature.trim() === "") {
    return { ok: false, error: "missing X-Hub-Signature-256 header; set the webhook's secret to GITHUB_WEBHOOK_SECRET" }
  }
  if (rawBody.length === 0) return { ok: false, error: "empty body; nothing was signed" }
  const match = SIGNATURE.exec(signature.trim())
  if (match === null) return { ok: false, error: "X-Hub-Signature-256 is not \"sha256=\" and 64 lowercase hex digits" }
  const given = Buffer.from(match[1]!, "hex")
  const valid = secrets.some((secret) =>
    timingSafeEqual(createHmac("sha256", Redacted.value(secret)).update(rawBody).digest(), given)
  )
  return valid
    ? { ok: true }
    : { ok: false, error: "X-Hub-Signature-256 does not match the body; check GITHUB_WEBHOOK_SECRET" }
}
