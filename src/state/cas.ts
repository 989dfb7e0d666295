/**
 * Read-modify-write of one key under cas, the way every writer that may race another
 * replica or a person changes a document.
 *
 * A write may carry guards: transaction operations (a check on the lock key, a
 * delivery mark created with cas=0) that Consul applies in the same transaction, so
 * the write happens only if every guard holds at that moment. Which guard failed is
 * told back (`GuardFailed.guard`), so a caller can tell "the lock changed" from "this
 * delivery was already acted on".
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { Consul } from "../consul/consul.ts"
import type { ConsulError, KvEntry, TxnOp, TxnResult } from "../consul/consul.ts"

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

const CAS_ATTEMPTS = 8

/** The guard (index into `guards`) that failed in a transaction whose first `offset` ops are the write itself. */
export const failedGuard = (result: TxnResult, offset: number): number | undefined => {
  if (result.ok) return undefined
  const op = result.errors.map((e) => e.opIndex).find((i) => i >= offset)
  return op === undefined ? undefined : op - offset
}

export const describeErrors = (result: TxnResult) =>
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
