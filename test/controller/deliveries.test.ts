// Delivery marks (src/controller/webhook/deliveries.ts): created with cas=0 so a second
// write with the same delivery fails, and pruned after their time.
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { deliveriesPrefix, deliveryGuard, pruneDeliveries } from "../../src/controller/webhook/deliveries.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { listPrefix } from "./harness.ts"

describe("delivery marks", () => {
  let consul: TestConsul
  before(async () => {
    consul = await startConsul()
  })
  after(async () => {
    await consul?.close()
  })
  const run = <A, E>(effect: Effect.Effect<A, E, Consul>) =>
    Effect.runPromise(effect.pipe(Effect.provide(consulLayer({ address: consul.addr, tls: { verify: true } }))))

  it("refuses ids that are not GUID-like, so a header cannot pick a key", () => {
    const keys = makeKeys("sacar")
    assert.equal(deliveryGuard(keys, "../../shop/deploy", "check_run", "shop", new Date()), undefined)
    assert.equal(deliveryGuard(keys, undefined, "check_run", "shop", new Date()), undefined)
    assert.equal(
      deliveryGuard(keys, "72d3162e-cc78-11e3-81ab-4c9367dc0958", "check_run", "shop", new Date())?.key,
      "sacar/_controller/deliveries/72d3162e-cc78-11e3-81ab-4c9367dc0958/shop"
    )
  })

  it("a mark can be created once; marks older than the TTL are pruned, newer ones kept", async () => {
    const keys = makeKeys(randomPrefix())
    const now = new Date("2026-12-01T12:00:00Z")
    const old = deliveryGuard(keys, "old-delivery", "check_run", "shop", new Date(now.getTime() - 4 * 86_400_000))!
    const fresh = deliveryGuard(keys, "fresh-delivery", "check_run", "shop", now)!
    const first = await run(Consul.use((c) => c.txn([old, fresh])))
    assert.equal(first.ok, true)
    const again = await run(Consul.use((c) => c.txn([fresh])))
    assert.equal(again.ok, false, "the same delivery cannot leave its mark twice")
    const pruned = await run(pruneDeliveries(keys, now))
    assert.equal(pruned, 1)
    const left = [...(await listPrefix(consul.addr, deliveriesPrefix(keys))).keys()]
    assert.deepEqual(left, [`${deliveriesPrefix(keys)}fresh-delivery/shop`])
  })
})
