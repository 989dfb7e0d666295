/**
 * Deploy slots: at most `limit` holders under a prefix, and each contender costs a
 * handful of requests of a few hundred bytes whatever the number of contenders
 * (docs/decisions.md, "Deploy slots: queues, not a shared holder list").
 *
 * The prefix holds `limit` lanes, `P/<lane>/`, dealt round-robin: a contender takes a
 * ticket, the LockIndex of `P/ticket` after locking and unlocking it in one transaction
 * (Consul counts acquisitions; never refused, so no retries however many arrive at
 * once), and queues in lane `ticket mod limit`. So `limit` contenders arriving on a
 * free semaphore all hold at once. Each lane is a FIFO queue that admits one holder at a time:
 * - `P/<lane>/tail`: the session that queued last (a plain value, no session);
 * - `P/<lane>/<session>`: the contender, held by its session (Behavior "delete", so a
 *   dead contender's key goes with it), `{"node":…,"holding":bool}`.
 * Queueing is one transaction: read `tail`, create the own key, set `tail` to itself.
 * Consul applies it atomically, so it is a swap that is never refused: a burst of N
 * contenders costs N transactions, not the N² compare-and-set retries of a counter or
 * of the Go api's `.lock` document. The previous tail is the predecessor; a contender
 * watches only the predecessor's key and holds the lane once that key is gone:
 * - gone after saying `holding`: the predecessor held the lane only once everything
 *   queued before it was gone, so the lane is free;
 * - gone without being seen holding (it died or gave up while waiting, or it was quick):
 *   one listing of the lane finds the newest contender queued before this one that is
 *   still there, which becomes the predecessor; none left means the lane is free.
 * So a lane never has two holders, and `limit` lanes never more than `limit`.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { consulRetry } from "../common/retry.ts"
import { Consul, isTransientConsulError } from "./consul.ts"
import type { ConsulError, KvEntry } from "./consul.ts"

const TAIL = "tail"

/** A contender's key could not be made (a refused transaction), or the limit is not a positive integer. */
export class SemaphoreConflict extends Data.TaggedError("SemaphoreConflict")<{
  readonly prefix: string
  readonly message: string
}> {}

export interface SemaphoreOptions {
  /** Written into the contender key (e.g. the node name), for people reading KV. */
  readonly value?: string
  /** Longest blocking wait on the predecessor's key. Default "5m": its end is a re-read, nothing more. */
  readonly wait?: string
}

interface Contender {
  readonly node: string
  readonly holding: boolean
}

const trimSlash = (prefix: string) => prefix.replace(/\/+$/, "")

const decodeContender = (entry: KvEntry): Contender => {
  try {
    const parsed = JSON.parse(entry.value ?? "") as Partial<Contender>
    return { node: String(parsed.node ?? ""), holding: parsed.holding === true }
  } catch {
    return { node: "", holding: false }
  }
}

const contenderValue = (node: string, holding: boolean) => JSON.stringify({ node, holding })

/**
 * Takes one of `limit` slots under `prefix` for `sessionId`, blocking until its turn;
 * returns the key it holds (watch it with `slotLost`). The slot is given back when the
 * Scope closes, also when interrupted while waiting. Consul outages while waiting are
 * retried with backoff. Contenders that disagree on `limit` (the app's maxParallel
 * changed mid-rollout) queue in different lane sets until the older ones are done, so
 * for that while up to the larger of the two limits plus the old holders may run.
 */
export const acquireSemaphore = (
  prefix: string,
  sessionId: string,
  limit: number,
  options: SemaphoreOptions = {}
): Effect.Effect<string, ConsulError | SemaphoreConflict, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const base = trimSlash(prefix)
    const wait = options.wait ?? "5m"
    const node = options.value ?? ""
    if (!Number.isInteger(limit) || limit < 1) {
      return yield* Effect.fail(
        new SemaphoreConflict({ prefix: base, message: `semaphore limit must be a positive integer, got ${limit}` })
      )
    }
    const ticket = yield* takeTicket(base, sessionId)
    const lane = `${base}/${ticket % limit}`
    const tailKey = `${lane}/${TAIL}`
    const ownKey = `${lane}/${sessionId}`

    const queued = yield* Effect.acquireRelease(
      enqueue(lane, sessionId, node),
      () => release(lane, sessionId)
    )

    let predecessor = queued.predecessor
    // The predecessor's value as last seen: whether it was holding when its key went.
    let seen: Contender | undefined
    const step = Effect.gen(function*() {
      if (predecessor === undefined) return "free" as const
      const key = `${lane}/${predecessor}`
      const read = yield* consul.get(key)
      const entry = read.value
      if (entry !== undefined && entry.session === predecessor) {
        seen = decodeContender(entry)
        const after = yield* consul.get(key, { index: entry.modifyIndex, wait })
        const next = after.value
        if (next !== undefined && next.session === predecessor) {
          seen = decodeContender(next)
          return "waiting" as const
        }
      }
      if (seen?.holding === true) return "free" as const
      // Gone unseen holding: find who queued before this contender and is still there.
      const { value: entries } = yield* consul.list(`${lane}/`)
      let newest: KvEntry | undefined
      for (const e of entries) {
        if (e.key === tailKey || e.key === ownKey || e.session === undefined) continue
        if (e.createIndex >= queued.createIndex) continue
        if (newest === undefined || e.createIndex > newest.createIndex) newest = e
      }
      if (newest === undefined) return "free" as const
      predecessor = newest.key.slice(lane.length + 1)
      seen = decodeContender(newest)
      return "waiting" as const
    })
    // Any failure here is Consul's to heal: the contender keeps its place meanwhile.
    yield* step.pipe(
      Effect.tapError((error) => Effect.logWarning(`consul semaphore ${lane}: ${error.message}; retrying`)),
      Effect.retry(consulRetry),
      Effect.repeat({ until: (s) => s === "free" })
    )
    // Marked for whoever queued behind: a key that goes after this says the lane is free.
    yield* consul.put(ownKey, contenderValue(node, true), { acquire: sessionId }).pipe(
      Effect.retry({ times: 5, while: (e) => e._tag === "ConsulUnavailable" })
    )
    return ownKey
  })

/** The next ticket under `base`: how many times `base/ticket` has been locked, this time included. */
const takeTicket = (base: string, sessionId: string): Effect.Effect<number, ConsulError | SemaphoreConflict, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = `${base}/ticket`
    const result = yield* consul.txn([
      { verb: "lock", key, value: "", session: sessionId },
      { verb: "unlock", key, value: "", session: sessionId }
    ]).pipe(
      Effect.retry({ schedule: consulRetry, while: isTransientConsulError })
    )
    const locked = result.ok ? result.entries.find((e) => e.key === key) : undefined
    if (locked === undefined) {
      const why = result.ok ? "no entry in the answer" : result.errors.map((e) => e.what).join("; ")
      return yield* Effect.fail(new SemaphoreConflict({ prefix: base, message: `could not take a ticket: ${why}` }))
    }
    return locked.lockIndex
  })

/**
 * One transaction: the previous tail, the own key held by the session, the tail set to
 * the session. `get-tree` on the tail key reads nothing rather than failing when there
 * is no tail (session ids are hex: none starts with "tail").
 */
const enqueue = (
  lane: string,
  sessionId: string,
  node: string
): Effect.Effect<{ predecessor: string | undefined; createIndex: number }, ConsulError | SemaphoreConflict, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const tailKey = `${lane}/${TAIL}`
    const ownKey = `${lane}/${sessionId}`
    const result = yield* consul.txn([
      { verb: "get-tree", key: tailKey },
      { verb: "lock", key: ownKey, value: contenderValue(node, false), session: sessionId },
      { verb: "set", key: tailKey, value: sessionId }
    ]).pipe(
      Effect.tapError((error) =>
        isTransientConsulError(error)
          ? Effect.logWarning(`consul semaphore ${lane}: ${error.message}; retrying`)
          : Effect.void
      ),
      Effect.retry({ schedule: consulRetry, while: isTransientConsulError })
    )
    if (!result.ok) {
      return yield* Effect.fail(
        new SemaphoreConflict({
          prefix: lane,
          message: `could not queue ${ownKey}: ${result.errors.map((e) => e.what).join("; ")}`
        })
      )
    }
    const previous = result.entries.find((e) => e.key === tailKey && e.value !== null)
    const own = result.entries.find((e) => e.key === ownKey)
    const predecessor = previous?.value === undefined || previous.value === null || previous.value === sessionId
      ? undefined
      : previous.value
    return { predecessor, createIndex: own?.createIndex ?? Number.MAX_SAFE_INTEGER }
  })

const RELEASE_WITHIN = "5 seconds"

/**
 * Deletes the own key, then the tail if it still names this session (compare-and-set
 * on its index, so a contender that queued meanwhile keeps its predecessor link);
 * best-effort and bounded: a dead session's key goes with it anyway.
 */
const release = (lane: string, sessionId: string): Effect.Effect<void, never, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const tailKey = `${lane}/${TAIL}`
    const result = yield* consul.txn([
      { verb: "delete", key: `${lane}/${sessionId}` },
      { verb: "get-tree", key: tailKey }
    ])
    const tail = result.ok ? result.entries.find((e) => e.key === tailKey) : undefined
    if (tail !== undefined && tail.value === sessionId) yield* consul.delete(tailKey, { cas: tail.modifyIndex })
  }).pipe(
    Effect.timeout(RELEASE_WITHIN),
    Effect.catch((error) =>
      Effect.logWarning(
        `consul semaphore ${lane}: releasing the slot of ${sessionId} failed (it frees when the session ends): ${error.message}`
      )
    )
  )
