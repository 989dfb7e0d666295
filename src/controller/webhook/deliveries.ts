/**
 * GitHub redelivers a webhook with the same `X-GitHub-Delivery` (after its 10 s
 * timeout, or when someone presses "Redeliver"). A delivery that acted (a deploy, a
 * rewritten release) leaves a mark at `<prefix>/_controller/deliveries/<id>/<app>`,
 * created with cas=0 in the same Consul transaction as the write it caused: a repeat
 * finds the mark, the transaction fails on it, and nothing is written twice. Marks are
 * pruned by the leader after DELIVERY_TTL_MS, far longer than GitHub keeps offering
 * redelivery of a recent delivery in practice.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { Consul } from "../../consul/consul.ts"
import type { ConsulError, TxnOp } from "../../consul/consul.ts"
import { decodeDocument, encodeDocument } from "../../spec/decode.ts"
import type { Keys } from "../../spec/keys.ts"

/** Three days. */
export const DELIVERY_TTL_MS = 3 * 24 * 3600_000

const DeliveryMark = Schema.Struct({ event: Schema.String, at: Schema.String })

/** GitHub's delivery ids are GUIDs; anything else is not trusted as a key segment. */
const DELIVERY_ID = /^[A-Za-z0-9-]{1,64}$/

export const deliveriesPrefix = (keys: Keys) => `${keys.prefix}/_controller/deliveries/`

/** The guard a write caused by `delivery` carries for `app`; undefined when the id is unusable. */
export const deliveryGuard = (
  keys: Keys,
  delivery: string | undefined,
  event: string,
  app: string,
  now: Date
): TxnOp | undefined =>
  delivery === undefined || !DELIVERY_ID.test(delivery)
    ? undefined
    : {
      verb: "cas",
      key: `${deliveriesPrefix(keys)}${delivery}/${app}`,
      index: 0,
      value: encodeDocument(DeliveryMark, { event, at: now.toISOString() })
    }

/** Deletes marks older than `ttlMs` (and marks that do not decode). Returns how many went. */
export const pruneDeliveries = (
  keys: Keys,
  now: Date,
  ttlMs: number = DELIVERY_TTL_MS
): Effect.Effect<number, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const entries = (yield* consul.list(deliveriesPrefix(keys))).value
    const old = entries.filter((entry) => {
      const mark = decodeDocument(DeliveryMark, "delivery mark", entry.key, entry.value)
      return Result.isFailure(mark) || now.getTime() - Date.parse(mark.success.at) > ttlMs
    })
    // One transaction holds at most 64 operations.
    for (let i = 0; i < old.length; i += 64) {
      yield* consul.txn(
        old.slice(i, i + 64).map((e): TxnOp => ({ verb: "delete-cas", key: e.key, index: e.modifyIndex }))
      )
    }
    return old.length
  })
