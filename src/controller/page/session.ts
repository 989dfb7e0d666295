/**
 * How a browser shows the status page the read token. A script sends the bearer, as
 * for /v1. A person types the token once into the sign-in form; the controller answers
 * with an HttpOnly, SameSite=Strict cookie that is not the token but a MAC of an
 * expiry time keyed by it: page scripts cannot read it, other sites cannot send it,
 * it stops working after SESSION_HOURS, and rotating the token signs every browser out.
 * Nothing is stored: any replica checks any cookie.
 */
import * as Redacted from "effect/Redacted"
import { createHmac, timingSafeEqual } from "node:crypto"
import { header, type HttpRequest } from "../http/types.ts"

export const COOKIE = "sacar_page"
const SESSION_HOURS = 12

const mac = (token: Redacted.Redacted<string>, expires: number): Buffer =>
  createHmac("sha256", Redacted.value(token)).update(`sacar status page until ${expires}`).digest()

const cookies = (req: HttpRequest): Map<string, string> => {
  const jar = new Map<string, string>()
  for (const part of (header(req, "cookie") ?? "").split(";")) {
    const eq = part.indexOf("=")
    if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  return jar
}

/** Behind a TLS-terminating proxy the cookie is marked Secure. */
const secure = (req: HttpRequest): string => (header(req, "x-forwarded-proto") === "https" ? "; Secure" : "")

export const sessionCookie = (token: Redacted.Redacted<string>, req: HttpRequest, nowMs: number): string => {
  const expires = nowMs + SESSION_HOURS * 3600_000
  const value = `${expires}.${mac(token, expires).toString("base64url")}`
  return `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_HOURS * 3600}${secure(req)}`
}

export const clearedCookie = (req: HttpRequest): string =>
  `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure(req)}`

/** Whether the request carries a cookie this token signed and that has not expired. */
export const hasSession = (token: Redacted.Redacted<string>, req: HttpRequest, nowMs: number): boolean => {
  const value = cookies(req).get(COOKIE)
  const match = value === undefined ? null : /^(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(value)
  if (match === null) return false
  const expires = Number(match[1])
  if (expires <= nowMs) return false
  return timingSafeEqual(Buffer.from(match[2]!, "base64url"), mac(token, expires))
}

/** The token typed into the form, compared in constant time (both sides hashed first). */
export const tokenMatches = (token: Redacted.Redacted<string>, typed: string): boolean => {
  const a = createHmac("sha256", "sacar").update(typed).digest()
  const b = createHmac("sha256", "sacar").update(Redacted.value(token)).digest()
  return timingSafeEqual(a, b)
}
