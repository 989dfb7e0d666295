/**
 * Writes to desired state that the controller and the operator commands share: a
 * cas read-modify-write, the lock check every deploy request goes through, and the
 * DeploySpec write that yields the new generation.
 */
import { Data, Effect, Result } from "effect"
import { Consul } from "../consul/Consul.ts"
import type { ConsulError, KvEntry } from "../consul/Consul.ts"
import { decodeDocument, encodeDocument } from "../spec/decode.ts"
import { DeploySpec, LockDoc, lockInForce } from "../spec/documents.ts"
import type { Keys } from "../spec/keys.ts"

/** Another writer kept winning the cas race; the caller answers 503 and GitHub may redeliver. */
export class WriteConflict
  extends Data.TaggedError("WriteConflict")<{ readonly key: string; readonly message: string }>
{}

const CAS_ATTEMPTS = 8

/**
 * Read-modify-write of one key under cas. `next` sees the current entry (undefined
 * when absent) and returns the new value, or undefined to leave the key alone.
 */
export const casUpdate = (
  key: string,
  next: (current: KvEntry | undefined) => string | undefined
): Effect.Effect<"written" | "unchanged", ConsulError | WriteConflict, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = (yield* consul.get(key)).value
      const value = next(current)
      if (value === undefined || value === current?.value) return "unchanged" as const
      if (yield* consul.put(key, value, { cas: current?.modifyIndex ?? 0 })) return "written" as const
      yield* Effect.sleep(10 * (attempt + 1))
    }
    return yield* new WriteConflict({
      key,
      message: `${key}: changed by someone else ${CAS_ATTEMPTS} times in a row; not written`
    })
  })

export type LockState = { readonly locked: false } | { readonly locked: true; readonly reason: string }

/** A lock that cannot be read counts as a lock: refusing a deploy is the safe mistake. */
export const readLock = (keys: Keys, app: string): Effect.Effect<LockState, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.lock(app)
    const entry = (yield* consul.get(key)).value
    if (entry === undefined) return { locked: false }
    const decoded = decodeDocument(LockDoc, "LockDoc", key, entry.value)
    if (Result.isFailure(decoded)) return { locked: true, reason: `${decoded.failure.message} (treated as locked)` }
    const lock = decoded.success
    if (!lockInForce(lock, new Date())) return { locked: false }
    const until = lock.until === undefined ? "" : ` until ${lock.until}`
    return { locked: true, reason: `${app} is locked by ${lock.by}${until}: ${lock.reason}` }
  })

/** Writes the DeploySpec and returns its generation (the key's new ModifyIndex). */
export const writeDeploy = (keys: Keys, app: string, spec: DeploySpec): Effect.Effect<number, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.deploy(app)
    const result = yield* consul.txn([{ verb: "set", key, value: encodeDocument(DeploySpec, spec) }])
    const written = result.ok ? result.entries.find((e) => e.key === key) : undefined
    if (written !== undefined && written.modifyIndex > 0) return written.modifyIndex
    // A Consul that does not echo the entry: read the index back.
    const entry = (yield* consul.get(key)).value
    return entry?.modifyIndex ?? 0
  })
