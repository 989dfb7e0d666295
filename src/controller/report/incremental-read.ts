/**
 * A prefix read incrementally: its entries are downloaded once, and afterwards only the
 * keys that changed. A blocking keys-only listing (`?keys`, names without values) wakes
 * at each change under the prefix; a read-only transaction of `check-index` operations,
 * one per key held, with the ModifyIndex held, names the keys whose index moved (Consul
 * answers a failed transaction with every failed operation and nothing else); then one
 * transaction of `get`s fetches those and the new keys. At 1000 nodes a NodeStatus write
 * costs the report loop the key names (about 30 bytes a node) and the one document,
 * where a recursive read of the app costs every node's status (about 1 KiB each).
 *
 * Which reads are stale: the listing (`?stale`, any server; it only says that something
 * changed). The transactions go to the leader in default mode (read-only transactions
 * are served like reads), so what is fetched is at least as new as what the listing said.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { consulRetry } from "../../common/retry.ts"
import { Consul } from "../../consul/consul.ts"
import type { ConsulError, Indexed, KvEntry, TxnOp } from "../../consul/consul.ts"
import { watchBlocking } from "../../consul/watch.ts"

/** Operations per transaction: Consul's limit before 1.14 (128 since), so any version takes it. */
const TXN_MAX_OPS = 64

/**
 * A check every key fails (no key has ModifyIndex 0, and a missing key fails too): with
 * it a transaction of checks always fails, so its answer lists the changed keys only,
 * never one result per key that did not change.
 */
const alwaysFails = (key: string): TxnOp => ({ verb: "check-index", key, index: 0 })

const byKey = (a: KvEntry, b: KvEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** The keys among `held` whose ModifyIndex is no longer the one held (changed or gone). */
const changedKeys = (held: ReadonlyMap<string, KvEntry>) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const changed = new Set<string>()
    for (const batch of chunks([...held.values()], TXN_MAX_OPS - 1)) {
      const ops: Array<TxnOp> = batch.map((e) => ({ verb: "check-index", key: e.key, index: e.modifyIndex }))
      ops.push(alwaysFails(batch[0]!.key))
      const result = yield* consul.txn(ops)
      if (result.ok) continue // cannot happen (alwaysFails); nothing to learn from it
      for (const error of result.errors) if (error.opIndex < batch.length) changed.add(batch[error.opIndex]!.key)
    }
    return changed
  })

/** The entries of `wanted` as they are now; a key deleted in the meantime is left out. */
const fetchKeys = (wanted: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const found: Array<KvEntry> = []
    for (const batch of chunks(wanted, TXN_MAX_OPS)) {
      let keys = batch
      while (keys.length > 0) {
        const result = yield* consul.txn(keys.map((key) => ({ verb: "get", key })))
        if (result.ok) {
          found.push(...result.entries)
          break
        }
        // `get` fails for a key that is gone: fetch the others again without it.
        const gone = new Set(result.errors.map((e) => keys[e.opIndex]))
        keys = keys.filter((key) => !gone.has(key))
      }
    }
    return found
  })

/**
 * Every entry under `prefix` whose key `wanted` accepts, emitted at the start and again
 * whenever one of them changed, appeared or went. `wait` and the token bucket are the
 * watch's (consul/watch.ts): a change is seen at once, a storm becomes one read a second.
 */
export const watchIncrementally = (
  prefix: string,
  wanted: (key: string) => boolean,
  options: { readonly wait?: string; readonly minIntervalMs?: number } = {}
): Stream.Stream<Indexed<ReadonlyArray<KvEntry>>, never, Consul> =>
  Stream.suspend(() => {
    const held = new Map<string, KvEntry>()
    let loaded = false
    const refresh = (listed: Indexed<ReadonlyArray<string>>) =>
      Effect.gen(function*() {
        const consul = yield* Consul
        if (!loaded) {
          const all = yield* consul.list(prefix, { index: 0, stale: true })
          for (const entry of all.value) if (wanted(entry.key)) held.set(entry.key, entry)
          loaded = true
          return true
        }
        const names = new Set(listed.value.filter(wanted))
        let moved = false
        for (const key of held.keys()) {
          if (!names.has(key)) {
            held.delete(key)
            moved = true
          }
        }
        const fetch = [...names].filter((key) => !held.has(key))
        if (held.size > 0) { for (const key of yield* changedKeys(held)) fetch.push(key) }
        if (fetch.length === 0) return moved
        const fetched = yield* fetchKeys(fetch)
        const present = new Set(fetched.map((e) => e.key))
        for (const key of fetch) if (!present.has(key)) held.delete(key)
        for (const entry of fetched) held.set(entry.key, entry)
        return true
      }).pipe(
        Effect.tapError((error: ConsulError) =>
          Effect.logWarning(`report loop: reading what changed under ${prefix}: ${error.message}; retrying`)
        ),
        Effect.retry(consulRetry),
        Effect.orDie // consulRetry never gives up
      )
    return watchBlocking(
      `keys ${prefix}`,
      { ...options, stale: true },
      (index, wait) => Consul.use((c) => c.listKeys(prefix, { index, wait, stale: true }))
    ).pipe(
      Stream.mapEffect((listed) =>
        refresh(listed).pipe(
          Effect.map((moved): Indexed<ReadonlyArray<KvEntry>> | undefined =>
            // In key order, as a recursive read lists them.
            moved ? { index: listed.index, value: [...held.values()].sort(byKey) } : undefined
          )
        )
      ),
      Stream.filter((read): read is Indexed<ReadonlyArray<KvEntry>> => read !== undefined)
    )
  })
