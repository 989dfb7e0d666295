import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createPrivateKey } from "node:crypto"
import { readFileSync } from "node:fs"
import { GitHubConfigError } from "./errors.ts"

export type GitHubAuth =
  | { readonly mode: "app"; readonly appId: string; readonly privateKey: Redacted.Redacted<string> }
  | { readonly mode: "token"; readonly token: Redacted.Redacted<string> }

/**
 * How hard the client waits and retries. The defaults are GitHub's own advice; tests
 * shorten them so a retry scenario takes seconds, not minutes.
 */
export interface GitHubTuning {
  /** Minimum gap between two writes of one service instance (GitHub asks for 1 s). */
  readonly writeIntervalMs: number
  /** plugin-retry waits (n+1)² × this before retry n, so 1 s, 4 s, 9 s … */
  readonly retryBaseMs: number
  /** Retries of 5xx and network errors before giving up. */
  readonly retries: number
  /** Secondary rate limit without Retry-After: seconds to wait (GitHub says at least 60). */
  readonly secondaryRateLimitFallbackSec: number
  /** A primary rate limit resetting later than this fails (retryable) instead of waiting. */
  readonly maxRateLimitWaitSec: number
  /** One HTTP exchange longer than this is abandoned and counts as a network error. */
  readonly requestTimeoutMs: number
}

export const defaultTuning: GitHubTuning = {
  writeIntervalMs: 1000,
  retryBaseMs: 1000,
  retries: 6, // 1+4+9+16+25+36 s: rides out an outage of about a minute and a half
  secondaryRateLimitFallbackSec: 60,
  maxRateLimitWaitSec: 120,
  requestTimeoutMs: 30_000
}

export interface GitHubConfig {
  /** REST base URL without trailing slash, e.g. https://api.github.com or https://ghe/api/v3. */
  readonly apiUrl: string
  readonly auth: GitHubAuth
  readonly tuning?: Partial<GitHubTuning>
}

type Env = Readonly<Record<string, string | undefined>>

const fail = (variable: string, message: string) =>
  Effect.fail(new GitHubConfigError({ variable, message: `${variable}: ${message}` }))

const present = (env: Env, name: string): string | undefined => {
  const v = env[name]
  return v === undefined || v.trim() === "" ? undefined : v
}

/** Accepts PKCS#1 ("BEGIN RSA PRIVATE KEY", what GitHub downloads) and PKCS#8 PEM. */
export const normalizePrivateKey = (pem: string): string | { readonly problem: string } => {
  // Env files and secret stores often carry the PEM on one line with literal "\n".
  const text = pem.includes("\\n") && !pem.includes("\n") ? pem.replace(/\\n/g, "\n") : pem
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(text)) {
    return { problem: "not a PEM private key (expected BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)" }
  }
  try {
    const key = createPrivateKey({ key: text, format: "pem" })
    if (key.asymmetricKeyType !== "rsa") {
      return { problem: `a ${key.asymmetricKeyType} key; GitHub App keys are RSA` }
    }
    return key.export({ type: "pkcs8", format: "pem" }).toString()
  } catch (e) {
    return { problem: `cannot be read as a private key (${(e as Error).message})` }
  }
}

const readSecret = (env: Env, name: string) =>
  Effect.gen(function*() {
    const inline = present(env, name)
    const file = present(env, `${name}_FILE`)
    if (inline !== undefined && file !== undefined) {
      return yield* fail(name, `set either ${name} or ${name}_FILE, not both`)
    }
    if (file !== undefined) {
      return yield* Effect.try({
        try: () => readFileSync(file, "utf8"),
        catch: (e) =>
          new GitHubConfigError({
            variable: `${name}_FILE`,
            message: `${name}_FILE: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`
          })
      })
    }
    return inline
  })

/**
 * Reads GITHUB_API_URL, GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY(_FILE), GITHUB_TOKEN.
 * App mode wins when GITHUB_APP_ID is set: CI environments often carry an unrelated
 * GITHUB_TOKEN. Neither set is an error; callers that can run without GitHub check
 * `hasGitHubConfig` first.
 */
export const githubConfigFromEnv = (env: Env = process.env): Effect.Effect<GitHubConfig, GitHubConfigError> =>
  Effect.gen(function*() {
    const rawUrl = present(env, "GITHUB_API_URL") ?? "https://api.github.com"
    let url: URL
    try {
      url = new URL(rawUrl)
    } catch {
      return yield* fail("GITHUB_API_URL", `not a URL: ${JSON.stringify(rawUrl)}`)
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return yield* fail("GITHUB_API_URL", `must be http(s), got ${url.protocol}`)
    }
    const apiUrl = url.toString().replace(/\/+$/, "")

    const appId = present(env, "GITHUB_APP_ID")?.trim()
    if (appId !== undefined) {
      // iss may be the numeric App ID or the App's client ID (Iv…).
      if (!/^\d+$/.test(appId) && !/^Iv[0-9A-Za-z.]+$/.test(appId)) {
        return yield* fail(
          "GITHUB_APP_ID",
          `expected the numeric App ID or a client ID (Iv…), got ${JSON.stringify(appId)}`
        )
      }
      const pem = yield* readSecret(env, "GITHUB_APP_PRIVATE_KEY")
      if (pem === undefined) {
        return yield* fail("GITHUB_APP_PRIVATE_KEY", "required with GITHUB_APP_ID (or GITHUB_APP_PRIVATE_KEY_FILE)")
      }
      const key = normalizePrivateKey(pem)
      if (typeof key !== "string") {
        const variable = present(env, "GITHUB_APP_PRIVATE_KEY_FILE")
          ? "GITHUB_APP_PRIVATE_KEY_FILE"
          : "GITHUB_APP_PRIVATE_KEY"
        return yield* fail(variable, key.problem)
      }
      return { apiUrl, auth: { mode: "app", appId, privateKey: Redacted.make(key) } }
    }
    if (
      present(env, "GITHUB_APP_PRIVATE_KEY") !== undefined || present(env, "GITHUB_APP_PRIVATE_KEY_FILE") !== undefined
    ) {
      return yield* fail("GITHUB_APP_ID", "required when GITHUB_APP_PRIVATE_KEY is set")
    }
    const token = present(env, "GITHUB_TOKEN")?.trim()
    if (token !== undefined) {
      if (/\s/.test(token)) return yield* fail("GITHUB_TOKEN", "contains white space")
      return { apiUrl, auth: { mode: "token", token: Redacted.make(token) } }
    }
    return yield* fail(
      "GITHUB_APP_ID",
      "set GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE) for App mode, or GITHUB_TOKEN for token mode"
    )
  })

/** True when the environment asks for GitHub at all (either mode). */
export const hasGitHubConfig = (env: Env = process.env): boolean =>
  ["GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_TOKEN"]
    .some((n) => present(env, n) !== undefined)
