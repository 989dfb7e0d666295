import { verify } from "node:crypto"
import type { KeyObject } from "node:crypto"

const decodePart = (part: string): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"))
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/**
 * Checks a GitHub App JWT the way GitHub does: RS256 signed by the App's key, `iss` the
 * App (or client) id, expiring at most 10 minutes after it was issued and not yet expired.
 * Returns the problem, or undefined when the JWT is good.
 */
export const jwtProblem = (
  jwt: string,
  publicKey: KeyObject,
  appId: string,
  nowSec = Math.floor(Date.now() / 1000)
): string | undefined => {
  const parts = jwt.split(".")
  if (parts.length !== 3) return "A JSON web token could not be decoded"
  const [h, p, s] = parts as [string, string, string]
  const header = decodePart(h)
  const payload = decodePart(p)
  if (!header || !payload) return "A JSON web token could not be decoded"
  if (header["alg"] !== "RS256") return `JWT alg must be RS256, got ${String(header["alg"])}`
  if (!verify("RSA-SHA256", Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, "base64url"))) {
    return "'Signature' could not be verified with the App's public key"
  }
  const { iss, iat, exp } = payload
  if (String(iss) !== appId) return `'Issuer' claim ('iss') must be the App's id ${appId}, got ${String(iss)}`
  if (typeof iat !== "number" || typeof exp !== "number") return "'Issued at' and 'Expiration time' claims are required"
  if (exp <= nowSec) return "'Expiration time' claim ('exp') is in the past"
  if (iat > nowSec + 60) return "'Issued at' claim ('iat') is in the future"
  if (exp - iat > 600) return "'Expiration time' claim ('exp') is too far in the future"
  return undefined
}
