/**
 * A counting semaphore laid out exactly like the Go api's `Semaphore`
 * (api/semaphore.go), so `consul lock -n=N <prefix>` and Sacar share slots:
 * - contender key `P/<session>`, held by that session, flags 16210313421097356768;
 * - coordination key `P/.lock`, no session, same flags, JSON
 *   `{"Limit":N,"Holders":{"<session>":true}}`, only ever changed by CAS.
 * A holder whose contender key no longer carries its session (the session died) is
 * pruned by the next contender that finds it gone. Unlike the Go api, a waiter never
 * lists the prefix (O(waiters) per read) nor watches `.lock` (woken by every change):
 * it reads `.lock` (O(limit)) and watches one holder's key (see waitOnHolder). Sessions used here should have Behavior "delete", as
 * the Go api's do, so a dead holder's contender key disappears with it.
 */
import { Data, Effect } from "effect"
import type { Scope } from "effect"
import { backoffDelay } from "./backoff.ts"
import { Consul } from "./Consul.ts"
import type { ConsulError, KvEntry } from "./Consul.ts"

/** api.SemaphoreFlagValue, 0xe0f69a2baa414de0. */
export const SEMAPHORE_FLAGS = "16210313421097356768"
export const SEMAPHORE_LOCK_KEY = ".lock"

/** Something under the prefix is not a semaphore's (wrong flags or an unreadable .lock). */
export class SemaphoreConflict extends Data.TaggedError("SemaphoreConflict")<{
  readonly prefix: string
  readonly message: string
}> {}

export interface SemaphoreOptions {
  /** Written into the contender key (e.g. the node name), for people reading KV. */
  readonly value?: string
  /** Blocking wait while all slots are taken; a dead holder is noticed within it. Default "10s". */
  readonly wait?: string
}

interface Coordination {
  readonly Limit: number
  readonly Holders: Record<string, boolean>
}

const trimSlash = (prefix: string) => prefix.replace(/\/+$/, "")

const decodeCoordination = (
  prefix: string,
  entry: KvEntry | undefined
): Effect.Effect<Coordination, SemaphoreConflict> => {
  if (entry === undefined) return Effect.succeed({ Limit: 0, Holders: {} })
  // Flags 0 is a hand-written key (`consul kv put`); anything else belongs to someone else.
  if (entry.flags !== SEMAPHORE_FLAGS && entry.flags !== "0") {
    return Effect.fail(
      new SemaphoreConflict({
        prefix,
        message:
          `${entry.key} is not a semaphore's: its flags are ${entry.flags}, expected ${SEMAPHORE_FLAGS} (is it a lock from \`consul lock -n=1\`?)`
      })
    )
  }
  if (entry.value === null || entry.value === "") return Effect.succeed({ Limit: 0, Holders: {} })
  try {
    const parsed = JSON.parse(entry.value) as Partial<Coordination>
    if (typeof parsed.Limit !== "number" || typeof parsed.Holders !== "object" || parsed.Holders === null)
      throw new Error("shape")
    return Effect.succeed({ Limit: parsed.Limit, Holders: { ...parsed.Holders } })
  } catch {
    return Effect.fail(
      new SemaphoreConflict({ prefix, message: `${entry.key} does not hold {"Limit":N,"Holders":{…}}` })
    )
  }
}

type Step = "acquired" | "wait" | "retry"

/**
 * Takes one of `limit` slots under `prefix` for `sessionId`, blocking until one is
 * free; the slot is given back when the Scope closes (also when interrupted while
 * waiting). Consul outages while waiting are retried with backoff. When the stored
 * limit differs from `limit` (the app's maxParallel changed), it waits until the old
 * holders are gone and then adopts the new limit, rather than exceeding either.
 */
export const acquireSemaphore = (
  prefix: string,
  sessionId: string,
  limit: number,
  options: SemaphoreOptions = {}
): Effect.Effect<void, ConsulError | SemaphoreConflict, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const base = trimSlash(prefix)
    const lockKey = `${base}/${SEMAPHORE_LOCK_KEY}`
    const contenderKey = `${base}/${sessionId}`
    const wait = options.wait ?? "10s"
    if (!Number.isInteger(limit) || limit < 1) {
      return yield* Effect.fail(
        new SemaphoreConflict({ prefix: base, message: `semaphore limit must be a positive integer, got ${limit}` })
      )
    }

    yield* Effect.acquireRelease(
      Effect.flatMap(
        consul.put(contenderKey, options.value ?? "", { acquire: sessionId, flags: SEMAPHORE_FLAGS }),
        (ok) =>
          ok
            ? Effect.void
            : Effect.fail(
              new SemaphoreConflict({
                prefix: base,
                message: `could not create contender key ${contenderKey} with session ${sessionId}`
              })
            )
      ),
      () => release(base, sessionId)
    )

    let failures = 0
    while (true) {
      const attempt = yield* Effect.result(Effect.gen(function*() {
        const read = yield* consul.get(lockKey)
        const current = yield* decodeCoordination(base, read.value)
        if (current.Holders[sessionId] === true && current.Limit === limit) return "acquired" as Step
        let holders: Record<string, boolean> = { ...current.Holders }
        delete holders[sessionId]
        const fits = (count: number) =>
          // A different stored limit is only replaced once nobody holds a slot under it.
          (current.Limit === 0 || current.Limit === limit || count === 0) &&
          count < (count === 0 || current.Limit === 0 ? limit : current.Limit)
        if (!fits(Object.keys(holders).length)) {
          const watched = yield* waitOnHolder(base, sessionId, Object.keys(holders), wait)
          if (watched === "changed") return "wait"
          // The watched holder died, or a whole wait passed without a change (another
          // holder may have died): prune every dead holder, O(limit) keys.
          holders = yield* liveHolders(base, holders)
          if (!fits(Object.keys(holders).length)) return "wait"
        }
        holders[sessionId] = true
        const ok = yield* consul.put(lockKey, JSON.stringify({ Limit: limit, Holders: holders }), {
          cas: read.value?.modifyIndex ?? 0,
          flags: SEMAPHORE_FLAGS
        })
        return ok ? "acquired" : "retry"
      }))
      if (attempt._tag === "Success") {
        failures = 0
        if (attempt.success === "acquired") return
        continue
      }
      const error = attempt.failure as ConsulError | SemaphoreConflict
      if (error._tag !== "ConsulUnavailable") return yield* Effect.fail(error)
      const delayMs = backoffDelay(failures++, 250)
      yield* Effect.logWarning(`consul semaphore ${base}: ${error.message}; retrying in ${Math.round(delayMs)} ms`)
      yield* Effect.sleep(delayMs)
    }
  })

/** A stable choice among the holders, different for different waiters. */
const pick = (sessionId: string, holders: ReadonlyArray<string>): string => {
  let hash = 0
  for (let i = 0; i < sessionId.length; i++) hash = (hash * 31 + sessionId.charCodeAt(i)) | 0
  return [...holders].sort()[Math.abs(hash) % holders.length]!
}

/**
 * While the slots are full, a waiter watches the contender key of one holder (chosen
 * by its own session, so waiters spread over the holders) and tries again when that
 * holder gives its slot back, dies (the key goes with its session) or `wait` passes.
 * Watching `.lock` instead, as the Go api does, would wake every waiter at every
 * change: O(fleet) wake-ups per waiter through a rollout instead of O(fleet / limit).
 * "dead" when the holder's key is already gone or no longer carries its session,
 * "quiet" when the whole wait passed without a change.
 */
const waitOnHolder = (
  base: string,
  sessionId: string,
  holders: ReadonlyArray<string>,
  wait: string
): Effect.Effect<"changed" | "dead" | "quiet", ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const holder = pick(sessionId, holders)
    const key = `${base}/${holder}`
    const { value: entry } = yield* consul.get(key)
    if (entry === undefined || entry.session !== holder) return "dead"
    const after = yield* consul.get(key, { index: entry.modifyIndex, wait })
    return after.value?.modifyIndex === entry.modifyIndex && after.value.session === holder ? "quiet" : "changed"
  })

/** Consul's transactions take at most 64 operations. */
const TXN_MAX_OPS = 64

/**
 * The holders whose contender key still carries their session, read in transactions
 * of `get-tree` on each holder's own key (a missing one reads as nothing, not as an
 * error): as many keys as the limit, never the whole prefix.
 */
const liveHolders = (
  base: string,
  holders: Record<string, boolean>
): Effect.Effect<Record<string, boolean>, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const ids = Object.keys(holders)
    const alive: Record<string, boolean> = {}
    for (let i = 0; i < ids.length; i += TXN_MAX_OPS) {
      const chunk = ids.slice(i, i + TXN_MAX_OPS)
      const result = yield* consul.txn(chunk.map((id) => ({ verb: "get-tree" as const, key: `${base}/${id}` })))
      // A refused read-only transaction says nothing about liveness: keep the holders.
      if (!result.ok) {
        for (const id of chunk) alive[id] = true
        continue
      }
      for (const entry of result.entries) {
        const id = entry.key.slice(base.length + 1)
        if (holders[id] === true && entry.session === id) alive[id] = true
      }
    }
    return alive
  })

const RELEASE_WITHIN = "5 seconds"

/** CAS-removes the session from .lock, then deletes its contender key; best-effort, bounded. */
const release = (base: string, sessionId: string): Effect.Effect<void, never, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const lockKey = `${base}/${SEMAPHORE_LOCK_KEY}`
    for (let attempt = 0; attempt < 10; attempt++) {
      const { value: entry } = yield* consul.get(lockKey)
      if (entry === undefined || entry.value === null) break
      const current = yield* decodeCoordination(base, entry)
      if (current.Holders[sessionId] === undefined) break
      const holders = { ...current.Holders }
      delete holders[sessionId]
      const ok = yield* consul.put(lockKey, JSON.stringify({ Limit: current.Limit, Holders: holders }), {
        cas: entry.modifyIndex,
        flags: SEMAPHORE_FLAGS
      })
      if (ok) break
    }
    yield* consul.delete(`${base}/${sessionId}`)
  }).pipe(
    Effect.timeout(RELEASE_WITHIN),
    Effect.catch((error) =>
      Effect.logWarning(
        `consul semaphore ${base}: releasing the slot of ${sessionId} failed (it frees when the session ends): ${error.message}`
      )
    )
  )
