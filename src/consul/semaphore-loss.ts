/**
 * Noticing that a semaphore slot (semaphore.ts) is lost while it is held, as the Go
 * api's semaphore tells its holder: the contender key (what acquireSemaphore returned) is deleted
 * or no longer carries the session (the session was destroyed, expired, or a person
 * removed the key). Watched with blocking queries; the holder races its work against it.
 */
import * as Effect from "effect/Effect"
import { Consul } from "./consul.ts"

const WATCH_WAIT = "30s"
const RETRY_MS = 1_000

/** Completes, with the reason, once `sessionId` no longer holds the slot `key`. Never fails. */
export const slotLost = (key: string, sessionId: string): Effect.Effect<string, never, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    let index = 0
    // One blocking read: the reason the slot is lost, or undefined while it is held.
    const look = Effect.suspend(() => consul.get(key, { index, wait: WATCH_WAIT })).pipe(
      Effect.map((read) => {
        const entry = read.value
        if (entry === undefined) return `the slot's key ${key} was deleted`
        if (entry.session !== sessionId) return `the slot's key ${key} is no longer held by session ${sessionId}`
        index = read.index < index ? 0 : Math.max(1, read.index)
        return undefined
      }),
      // Consul unreachable: the session's own renewal decides when that means loss.
      Effect.catch(() =>
        Effect.sync(() => {
          index = 0
        }).pipe(Effect.andThen(Effect.sleep(RETRY_MS)), Effect.as(undefined))
      )
    )
    const reason = yield* look.pipe(Effect.repeat({ until: (r) => r !== undefined }))
    return reason ?? `the slot's key ${key} is lost`
  })
