/**
 * `X-Hub-Signature-256` checking, done on the raw body before anything parses it. A
 * body that was cut short, re-encoded or tampered with fails here, so no handler ever
 * sees bytes GitHub did not sign. During a secret rotation two secrets are accepted
 * (GITHUB_WEBHOOK_SECRET and GITHUB_WEBHOOK_SECRET_PREVIOUS): GitHub signs with the
 * new one as soon as it is saved, deliveries in flight carry the old one.
 */
import { verify } from "@octokit/webhooks-methods"
import { Effect, Redacted } from "effect"

export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly error: string }

export const checkSignature = (
  secrets: ReadonlyArray<Redacted.Redacted<string>>,
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
  const matches = async () => {
    for (const secret of secrets) if (await verify(Redacted.value(secret), rawBody, signature.trim())) return true
    return false
  }
  return Effect.tryPromise(matches).pipe(
    Effect.map((valid): SignatureCheck =>
      valid
        ? { ok: true }
        : { ok: false, error: "X-Hub-Signature-256 does not match the body; check GITHUB_WEBHOOK_SECRET" }
    ),
    Effect.catch(() => Effect.succeed<SignatureCheck>({ ok: false, error: "X-Hub-Signature-256 could not be checked" }))
  )
}
