/**
 * Writes to desired state that the controller and the operator commands share: a
 * cas read-modify-write, the lock check every deploy request goes through, and the
 * DeploySpec write that yields the new generation.
 *
 * A write may carry guards: transaction operations (a check on the lock key, a
 * delivery mark created with cas=0) that Consul applies in the same transaction, so
 * the write happens only if every guard holds at that moment. Which guard failed is
 * told back (`GuardFailed.guard`), so a caller can tell "the lock changed" from "this
 * delivery was already acted on".
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Consul } from "../consul/Consul.ts"
import type { ConsulError, KvEntry, TxnOp, TxnResult } from "../consul/Consul.ts"
import { decodeDocument, encodeDocument } from "../spec/decode.ts"
import { DeploySpec, LockDoc, lockInForce } from "../spec/documents.ts"
import type { Keys } from "../spec/keys.ts"

/** Another writer kept winning the cas race; the caller answers 503 and GitHub may redeliver. */
export class WriteConflict
  extends Data.TaggedError("WriteConflict")<{ readonly key: string; readonly message: string }>
{}

/** A guard of the write did not hold (index into the guards given); nothing was written. */
export class GuardFailed extends Data.TaggedError("GuardFailed")<{
  readonly key: string
  readonly guard: number
  readonly message: string
}> {}

/** Consul refused the DeploySpec transaction for a reason that is not a guard: nothing was written. */
export class DeployNotWritten
  extends Data.TaggedError("DeployNotWritten")<{ readonly key: string; readonly message: string }>
{}

const CAS_ATTEMPTS = 8

/** The guard (index into `guards`) that failed in a transaction whose first `offset` ops are the write itself. */
const failedGuard = (result: TxnResult, offset: number): number | undefined => {
  if (result.ok) return undefined
  const op = result.errors.map((e) => e.opIndex).find((i) => i >= offset)
  return op === undefined ? undefined : op - offset
}

const describeErrors = (result: TxnResult) =>
  result.ok ? "" : result.errors.map((e) => `op ${e.opIndex}: ${e.what}`).join("; ")

/**
 * Read-modify-write of one key under cas. `next` sees the current entry (undefined
 * when absent) and returns the new value, or undefined to leave the key alone.
 */
export const casUpdate = (
  key: string,
  next: (current: KvEntry | undefined) => string | undefined
): Effect.Effect<"written" | "unchanged", ConsulError | WriteConflict, Consul> =>
  casUpdateGuarded(key, next, []).pipe(Effect.catchTag("GuardFailed", (e) => Effect.die(e)))

/** casUpdate whose write and `guards` go in one transaction. */
export const casUpdateGuarded = (
  key: string,
  next: (current: KvEntry | undefined) => string | undefined,
  guards: ReadonlyArray<TxnOp>
): Effect.Effect<"written" | "unchanged", ConsulError | WriteConflict | GuardFailed, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = (yield* consul.get(key)).value
      const value = next(current)
      if (value === undefined || value === current?.value) return "unchanged" as const
      const index = current?.modifyIndex ?? 0
      if (guards.length === 0) {
        if (yield* consul.put(key, value, { cas: index })) return "written" as const
      } else {
        const result = yield* consul.txn([{ verb: "cas", key, value, index }, ...guards])
        if (result.ok) return "written" as const
        const guard = failedGuard(result, 1)
        if (guard !== undefined) {
          return yield* new GuardFailed({ key, guard, message: `${key} not written: ${describeErrors(result)}` })
        }
      }
      yield* Effect.sleep(10 * (attempt + 1))
    }
    return yield* new WriteConflict({
      key,
      message: `${key}: changed by someone else ${CAS_ATTEMPTS} times in a row; not written`
    })
  })

export type LockState =
  | { readonly locked: false; readonly guard: TxnOp }
  | { readonly locked: true; readonly reason: string; readonly guard: TxnOp }

/**
 * A lock that cannot be read counts as a lock: refusing a deploy is the safe mistake.
 * `guard` is the transaction check that the lock key is still as read (absent, or at
 * the same ModifyIndex), so the decision and the DeploySpec write cannot be split by
 * a `sacar lock` in between.
 */
export const readLock = (keys: Keys, app: string): Effect.Effect<LockState, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.lock(app)
    const entry = (yield* consul.get(key)).value
    if (entry === undefined) return { locked: false, guard: { verb: "check-not-exists", key } }
    const guard: TxnOp = { verb: "check-index", key, index: entry.modifyIndex }
    const decoded = decodeDocument(LockDoc, "LockDoc", key, entry.value)
    if (Result.isFailure(decoded))
      return { locked: true, reason: `${decoded.failure.message} (treated as locked)`, guard }
    const lock = decoded.success
    if (!lockInForce(lock, new Date())) return { locked: false, guard }
    const until = lock.until === undefined ? "" : ` until ${lock.until}`
    return { locked: true, reason: `${app} is locked by ${lock.by}${until}: ${lock.reason}`, guard }
  })

/**
 * Writes the DeploySpec and returns its generation (the key's new ModifyIndex), in one
 * transaction with `guards`. Fails when the transaction does: GuardFailed when a guard
 * did not hold, DeployNotWritten otherwise; never reports a generation that was not written.
 */
export const writeDeploy = (
  keys: Keys,
  app: string,
  spec: DeploySpec,
  guards: ReadonlyArray<TxnOp> = []
): Effect.Effect<number, ConsulError | GuardFailed | DeployNotWritten, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.deploy(app)
    const result = yield* consul.txn([{ verb: "set", key, value: encodeDocument(DeploySpec, spec) }, ...guards])
    if (!result.ok) {
      const guard = failedGuard(result, 1)
      const message = `the DeploySpec of ${app} was not written: ${describeErrors(result)}`
      return yield* guard === undefined
        ? new DeployNotWritten({ key, message })
        : new GuardFailed({ key, guard, message })
    }
    const written = result.entries.find((e) => e.key === key)
    if (written !== undefined && written.modifyIndex > 0) return written.modifyIndex
    // A Consul that does not echo the entry: read the index back.
    const entry = (yield* consul.get(key)).value
    return entry?.modifyIndex ?? 0
  })
