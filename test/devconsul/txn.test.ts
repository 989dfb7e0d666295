// Transactions through the npm `consul` client (values base64-encoded by hand, as
// node-consul sends ops verbatim).

import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { randomPrefix } from "../support/consul.ts"
import { b64, consulSuite } from "./harness.ts"
import type { KvItem } from "./harness.ts"

type TxnFailure = Error & {
  statusCode?: number
  response?: { body?: { Results: unknown; Errors: Array<{ OpIndex: number; What: string }> } }
}

describe("dev-consul transactions", { concurrency: true }, () => {
  const suite = consulSuite()

  test("all operations share one index", async () => {
    const p = randomPrefix()
    const reply = await suite.c.transaction.create([
      { KV: { Verb: "set", Key: `${p}/a`, Value: b64("1") } },
      { KV: { Verb: "set", Key: `${p}/b`, Value: b64("2") } },
      { KV: { Verb: "get", Key: `${p}/a` } }
    ])
    assert.equal(reply.Errors, null)
    const results = reply.Results ?? []
    assert.equal(results.length, 3)
    assert.equal(results[0]?.KV.Value, null, "set results carry no value")
    assert.equal(results[2]?.KV.Value, b64("1"), "get results carry the value")
    const a = (await suite.c.kv.get(`${p}/a`)) as KvItem
    const b = (await suite.c.kv.get(`${p}/b`)) as KvItem
    assert.equal(a.ModifyIndex, b.ModifyIndex)
  })

  test("a failing check rolls everything back with 409", async () => {
    const p = randomPrefix()
    await suite.c.kv.set(`${p}/existing`, "old")
    const before = (await suite.c.kv.get(`${p}/existing`)) as KvItem
    await assert.rejects(
      suite.c.transaction.create([
        { KV: { Verb: "set", Key: `${p}/new`, Value: b64("x") } },
        { KV: { Verb: "set", Key: `${p}/existing`, Value: b64("new") } },
        { KV: { Verb: "check-not-exists", Key: `${p}/existing` } },
        { KV: { Verb: "cas", Key: `${p}/existing`, Value: b64("y"), Index: before.ModifyIndex + 1000 } }
      ]),
      (e: TxnFailure) => {
        assert.equal(e.statusCode, 409)
        const body = e.response?.body
        assert.equal(body?.Results, null)
        assert.deepEqual(
          body?.Errors.map((x) => x.OpIndex),
          [2, 3],
          "every failing op is reported"
        )
        return true
      }
    )
    assert.equal(await suite.c.kv.get(`${p}/new`), undefined, "nothing was written")
    const after = (await suite.c.kv.get(`${p}/existing`)) as KvItem
    assert.equal(after.Value, "old")
    assert.equal(after.ModifyIndex, before.ModifyIndex)
  })

  test("check-index, delete-cas and delete-tree", async () => {
    const p = randomPrefix()
    await suite.c.kv.set(`${p}/x/1`, "1")
    await suite.c.kv.set(`${p}/x/2`, "2")
    const one = (await suite.c.kv.get(`${p}/x/1`)) as KvItem
    const reply = await suite.c.transaction.create([
      { KV: { Verb: "check-index", Key: `${p}/x/1`, Index: one.ModifyIndex } },
      { KV: { Verb: "delete-cas", Key: `${p}/x/1`, Index: one.ModifyIndex } },
      { KV: { Verb: "delete-tree", Key: `${p}/x/` } },
      { KV: { Verb: "set", Key: `${p}/done`, Value: b64("yes") } }
    ])
    assert.equal(reply.Errors, null)
    assert.deepEqual(await suite.c.kv.keys(`${p}/`), [`${p}/done`])
  })

  test("lock and check-session in a transaction", async () => {
    const p = randomPrefix()
    const s = (await suite.c.session.create({ lockdelay: "0s" })).ID
    try {
      const reply = await suite.c.transaction.create([
        { KV: { Verb: "lock", Key: `${p}/leader`, Value: b64("me"), Session: s } },
        { KV: { Verb: "check-session", Key: `${p}/leader`, Session: s } }
      ])
      assert.equal(reply.Errors, null)
      assert.equal(((await suite.c.kv.get(`${p}/leader`)) as KvItem).Session, s)
    } finally {
      await suite.c.session.destroy(s)
    }
  })

  test("more than 128 operations is 413", async () => {
    const p = randomPrefix()
    const ops = Array.from({ length: 129 }, (_, i) => ({ KV: { Verb: "set", Key: `${p}/${i}`, Value: b64("v") } }))
    await assert.rejects(suite.c.transaction.create(ops), (e: TxnFailure) => e.statusCode === 413)
    assert.equal(await suite.c.kv.get({ key: `${p}/`, recurse: true }), undefined)
  })
})
