import { createAppAuth } from "@octokit/auth-app"
import { retry } from "@octokit/plugin-retry"
import { throttling } from "@octokit/plugin-throttling"
import { Octokit } from "@octokit/rest"
import Bottleneck from "bottleneck"
import { randomUUID } from "node:crypto"
import type { GitHubTuning } from "./config.ts"

export const SacarOctokit = Octokit.plugin(retry, throttling)
export type SacarOctokit = InstanceType<typeof SacarOctokit>

export interface OctokitLog {
  readonly debug: (message: string) => void
  readonly info: (message: string) => void
  readonly warn: (message: string) => void
  readonly error: (message: string) => void
}

/**
 * What all Octokit clients of one service instance share: its own throttle id and its own
 * write queue. plugin-throttling's queues are module-global and keyed by id, so without a
 * distinct id two services in one process would space each other's writes; the write
 * queue is passed as our own Bottleneck group because its `minTime` (1 s by default) is
 * fixed at creation and is the only way to make writes faster in tests.
 */
export interface ClientShared {
  readonly baseUrl: string
  readonly tuning: GitHubTuning
  readonly log: OctokitLog
  readonly throttleId: string
  readonly writeQueue: Bottleneck.Group
  /** The time now (ms): the service's `Clock`, read from inside Octokit's callbacks. */
  readonly now: () => number
}

export const makeClientShared = (
  baseUrl: string,
  tuning: GitHubTuning,
  log: OctokitLog,
  now: () => number
): ClientShared => ({
  baseUrl,
  tuning,
  log,
  now,
  throttleId: `sacar-github-${randomUUID()}`,
  writeQueue: new Bottleneck.Group({ maxConcurrent: 1, minTime: tuning.writeIntervalMs })
})

/** fetch with a per-exchange deadline, still aborted by the caller's signal. */
const fetchWithTimeout = (timeoutMs: number): typeof fetch => (input, init) => {
  const deadline = AbortSignal.timeout(timeoutMs)
  const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline
  return fetch(input, { ...init, signal })
}

/** Installation tokens are cached until 5 minutes before their `expires_at`. */
const EXPIRY_MARGIN_MS = 5 * 60_000

/**
 * auth-app's built-in cache keeps a token 59 minutes whatever its `expires_at` says; this
 * one reads the expiry auth-app stores in the value (third `|` field) and forgets the
 * token shortly before it, so shorter-lived tokens (GHES policies, tests) are renewed.
 */
export const makeTokenCache = (now: () => number) => {
  const entries = new Map<string, string>()
  return {
    get: (key: string): string | undefined => {
      const value = entries.get(key)
      if (value === undefined) return undefined
      const expiresAt = Date.parse(value.split("|")[2] ?? "")
      if (!Number.isFinite(expiresAt) || expiresAt - now() < EXPIRY_MARGIN_MS) {
        entries.delete(key)
        return undefined
      }
      return value
    },
    set: (key: string, value: string): void => {
      entries.set(key, value)
    }
  }
}

const baseOptions = (shared: ClientShared) => {
  const { tuning, log } = shared
  return {
    baseUrl: shared.baseUrl,
    userAgent: "sacar",
    log,
    request: { fetch: fetchWithTimeout(tuning.requestTimeoutMs) },
    retry: { retries: tuning.retries, retryAfterBaseValue: tuning.retryBaseMs },
    throttle: {
      id: shared.throttleId,
      write: shared.writeQueue,
      fallbackSecondaryRateRetryAfter: tuning.secondaryRateLimitFallbackSec,
      onSecondaryRateLimit: (
        retryAfter: number,
        options: { method: string; url: string },
        _o: unknown,
        retryCount: number
      ) => {
        log.warn(
          `GitHub secondary rate limit on ${options.method} ${options.url}: waiting ${retryAfter} s (retry ${
            retryCount + 1
          })`
        )
        return retryCount < 3
      },
      onRateLimit: (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
        if (retryAfter > tuning.maxRateLimitWaitSec || retryCount >= 1) {
          log.warn(`GitHub rate limit on ${options.method} ${options.url}: resets in ${retryAfter} s, not waiting`)
          return false
        }
        log.warn(`GitHub rate limit on ${options.method} ${options.url}: waiting ${retryAfter} s for the reset`)
        return true
      }
    }
  }
}

export const tokenClient = (shared: ClientShared, token: string): SacarOctokit =>
  new SacarOctokit({ ...baseOptions(shared), auth: token })

/**
 * Without `installationId` the client authenticates as the App (JWT), which is what
 * `/app/*` and `GET /repos/{o}/{r}/installation` need; with one, auth-app mints and
 * caches installation tokens and sends them.
 */
export const appClient = (
  shared: ClientShared,
  app: { readonly appId: string; readonly privateKey: string; readonly installationId?: number }
): SacarOctokit =>
  new SacarOctokit({
    ...baseOptions(shared),
    authStrategy: createAppAuth,
    auth: {
      appId: app.appId,
      privateKey: app.privateKey,
      ...(app.installationId !== undefined ? { installationId: app.installationId } : {}),
      cache: makeTokenCache(shared.now),
      log: shared.log
    }
  })
