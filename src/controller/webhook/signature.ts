/**
 * `X-Hub-Signature-256` checking, done on the raw body before anything parses it. A
 * body that was cut short, re-encoded or tampered with fails here, so no handler ever
 * sees bytes GitHub did not sign.
 */
import { verify } from "@octokit/webhooks-methods"
import { Effect, Redacted } from "effect"

export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly error: string }

export const checkSignature = (
  secret: Redacted.Redacted<string>,
  rawBody: string,
  signature: string | undefined
): Effect.Effect<SignatureCheck> => {
  if (signature === undefined || signature.trim() === "") {
    return Effect.succeed({
      ok: false,
      error: "missing X-Hub-Signature-256 header; set the webhook's secret to GITHUB_WEBHOOK_SECRET"
    })
  }
  // verify() throws on an empty payload instead of answering false.
  if (rawBody === "") return Effect.succeed({ ok: false, error: "empty body; nothing was signed" })
  return Effect.tryPromise(() => verify(Redacted.value(secret), rawBody, signature.trim())).pipe(
    Effect.map((valid): SignatureCheck =>
      valid
        ? { ok: true }
        : { ok: false, error: "X-Hub-Signature-256 does not match the body; check GITHUB_WEBHOOK_SECRET" }
    ),
    Effect.catch(() => Effect.succeed<SignatureCheck>({ ok: false, error: "X-Hub-Signature-256 could not be checked" }))
  )
}
