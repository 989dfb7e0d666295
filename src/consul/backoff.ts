import type { ConsulError } from "./consul.ts"

/**
 * Retry pacing shared by the watch, lock and semaphore loops: exponential with
 * "equal jitter" (half fixed, half random), so many reconcilers that lost Consul at
 * the same moment do not come back in lockstep, and capped so recovery is noticed
 * within ~15 s.
 */
export const MAX_BACKOFF_MS = 15_000

/** Delay before retry number `attempt` (0-based). */
export const backoffDelay = (attempt: number, baseMs: number, capMs = MAX_BACKOFF_MS): number => {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt))
  return ceiling / 2 + Math.random() * (ceiling / 2)
}

/**
 * The backoff delay, but never shorter than what Consul (or a proxy in front of it)
 * asked for with Retry-After on a 429 or 503.
 */
export const retryDelay = (error: ConsulError, attempt: number, baseMs: number): number =>
  Math.max(backoffDelay(attempt, baseMs), error._tag === "ConsulUnavailable" ? error.retryAfterMs ?? 0 : 0)
