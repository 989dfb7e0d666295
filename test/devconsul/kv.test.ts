// KV through the npm `consul` client, as an application would use it. Asserts only
// what a real Consul does, so it passes against CONSUL_HTTP_ADDR too.

import assert from "node:assert/strict"
import type { IncomingMessage } from "node:http"
import { describe, test } from "node:test"
import { randomPrefix } from "../support/consul.ts"
import { consulIndex, consulSuite, withResponse } from "./harness.ts"
import type { KvItem } from "./harness.ts"

/** The Go api's lock flag; above 2^53, so it must travel as an exact decimal. */
const LOCK_FLAG = 3304740253564472344n

describe("dev-consul KV", { concurrency: true }, () => {
  const suite = consulSuite()

  test("set, get, keys and delete", async () => {
    const p = randomPrefix()
    assert.equal(await suite.c.kv.set(`${p}/apps/web/desired`, "v1"), true)
    assert.equal(await suite.c.kv.set(`${p}/apps/web/observed/n1`, "ok"), true)
    assert.equal(await suite.c.kv.set(`${p}/apps/api/desired`, ""), true)

    const one = (await suite.c.kv.get(`${p}/apps/web/desired`)) as KvItem
    assert.equal(one.Key, `${p}/apps/web/desired`)
    assert.equal(one.Value, "v1")
    assert.equal(one.Flags, 0)
    assert.equal(one.LockIndex, 0)
    assert.equal("Session" in one, false, "Session is omitted when unheld")
    assert.ok(one.CreateIndex > 0 && one.ModifyIndex === one.CreateIndex)

    const empty = (await suite.c.kv.get(`${p}/apps/api/desired`)) as KvItem
    assert.equal(empty.Value, null, "an empty value comes back as null")

    const tree = (await suite.c.kv.get({ key: `${p}/apps/`, recurse: true })) as KvItem[]
    assert.deepEqual(
      tree.map((e) => e.Key),
      [`${p}/apps/api/desired`, `${p}/apps/web/desired`, `${p}/apps/web/observed/n1`]
    )

    assert.deepEqual(await suite.c.kv.keys(`${p}/apps/`), tree.map((e) => e.Key))
    assert.deepEqual(await suite.c.kv.keys({ key: `${p}/apps/`, separator: "/" }), [`${p}/apps/api/`, `${p}/apps/web/`])

    // Recurse is a plain string-prefix match, not a path match.
    assert.deepEqual(
      ((await suite.c.kv.get({ key: `${p}/apps/w`, recurse: true })) as KvItem[]).map((e) => e.Key),
      [`${p}/apps/web/desired`, `${p}/apps/web/observed/n1`]
    )

    assert.equal(await suite.c.kv.del(`${p}/apps/web/desired`), true)
    assert.equal(await suite.c.kv.get(`${p}/apps/web/desired`), undefined)
    assert.equal(await suite.c.kv.del(`${p}/apps/web/desired`), true, "deleting a missing key is still true")

    assert.equal(await suite.c.kv.del({ key: `${p}/`, recurse: true }), true)
    assert.equal(await suite.c.kv.get({ key: `${p}/`, recurse: true }), undefined)
    await assert.rejects(suite.c.kv.keys(`${p}/`), (e: Error & { statusCode?: number }) => e.statusCode === 404)
  })

  test("raw returns the bytes as they were written", async () => {
    const p = randomPrefix()
    const bytes = Buffer.from([0, 1, 2, 250, 255])
    assert.equal(await suite.c.kv.set(`${p}/bin`, bytes), true)
    const raw = (await suite.c.kv.get({ key: `${p}/bin`, raw: true })) as Buffer
    assert.deepEqual(Buffer.from(raw), bytes)
    const decoded = (await suite.c.kv.get({ key: `${p}/bin`, buffer: true })) as { Value: Buffer }
    assert.deepEqual(decoded.Value, bytes)
  })

  test("flags above 2^53 survive a round trip exactly", async () => {
    const p = randomPrefix()
    assert.equal(await suite.c.kv.set({ key: `${p}/lock`, value: "x", flags: LOCK_FLAG }), true)
    const res = await fetch(`${suite.consul.addr}/v1/kv/${p}/lock`)
    const text = await res.text()
    assert.match(text, /"Flags":3304740253564472344[,}]/)
    const entry = (await suite.c.kv.get(`${p}/lock`)) as KvItem
    assert.equal(entry.Flags, Number(LOCK_FLAG))
  })

  test("cas=0 creates only, cas=N writes only over ModifyIndex N", async () => {
    const p = randomPrefix()
    const key = `${p}/cas`
    assert.equal(await suite.c.kv.set({ key, value: "first", cas: 0 }), true)
    assert.notEqual(await suite.c.kv.set({ key, value: "second", cas: 0 }), true, "cas=0 on an existing key is refused")
    const first = (await suite.c.kv.get(key)) as KvItem
    assert.equal(first.Value, "first")

    assert.notEqual(await suite.c.kv.set({ key, value: "stale", cas: first.ModifyIndex + 1000 }), true)
    assert.equal(await suite.c.kv.set({ key, value: "second", cas: first.ModifyIndex }), true)
    const second = (await suite.c.kv.get(key)) as KvItem
    assert.equal(second.Value, "second")
    assert.ok(second.ModifyIndex > first.ModifyIndex)
    assert.equal(second.CreateIndex, first.CreateIndex)
    assert.notEqual(await suite.c.kv.set({ key, value: "third", cas: first.ModifyIndex }), true, "an old index loses")

    // Delete with cas: a stale index keeps the key, the current one deletes it.
    assert.notEqual(await suite.c.kv.del({ key, cas: first.ModifyIndex }), true)
    assert.equal(((await suite.c.kv.get(key)) as KvItem).Value, "second")
    assert.equal(await suite.c.kv.del({ key, cas: second.ModifyIndex }), true)
    assert.equal(await suite.c.kv.get(key), undefined)
  })

  test("an identical write keeps ModifyIndex", async () => {
    const p = randomPrefix()
    await suite.c.kv.set(`${p}/same`, "v")
    const before = (await suite.c.kv.get(`${p}/same`)) as KvItem
    await suite.c.kv.set(`${p}/same`, "v")
    const after = (await suite.c.kv.get(`${p}/same`)) as KvItem
    assert.equal(after.ModifyIndex, before.ModifyIndex)
  })

  test("a missing key answers 404 with X-Consul-Index and leader headers", async () => {
    const p = randomPrefix()
    await suite.c.kv.set(`${p}/exists`, "v")
    const [res, data] = (await suite.c.kv.get({ key: `${p}/missing`, ...withResponse() })) as [IncomingMessage, unknown]
    assert.equal(res.statusCode, 404)
    assert.equal(data, undefined)
    assert.ok(consulIndex(res) >= 1)
    assert.equal(res.headers["x-consul-knownleader"], "true")
    assert.ok(res.headers["x-consul-lastcontact"] !== undefined)

    const plain = await fetch(`${suite.consul.addr}/v1/kv/${p}/missing-too?recurse`)
    assert.equal(plain.status, 404)
    assert.ok(Number(plain.headers.get("x-consul-index")) >= 1)
  })

  test("bad index, bad wait, missing key name and conflicting flags are 400", async () => {
    const p = randomPrefix()
    const badIndex = await fetch(`${suite.consul.addr}/v1/kv/${p}/k?index=abc`)
    assert.equal(badIndex.status, 400)
    assert.match(await badIndex.text(), /Invalid index/)
    const badWait = await fetch(`${suite.consul.addr}/v1/kv/${p}/k?index=1&wait=soon`)
    assert.equal(badWait.status, 400)
    assert.match(await badWait.text(), /Invalid wait time/)
    const noKey = await fetch(`${suite.consul.addr}/v1/kv/`, { method: "PUT", body: "x" })
    assert.equal(noKey.status, 400)
    const conflict = await fetch(`${suite.consul.addr}/v1/kv/${p}/k?cas=0&release=abc`, { method: "PUT", body: "x" })
    assert.equal(conflict.status, 400)
    assert.match(await conflict.text(), /Conflicting flags/)

    await assert.rejects(
      suite.c.kv.get({ key: `${p}/k`, index: "abc" }),
      (e: Error & { statusCode?: number }) => e.statusCode === 400
    )
  })

  test("writes answer JSON true with an application/json content type", async () => {
    const p = randomPrefix()
    const res = await fetch(`${suite.consul.addr}/v1/kv/${p}/json`, { method: "PUT", body: "v" })
    assert.equal(res.status, 200)
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/)
    assert.equal(await res.json(), true)
  })

  test("values over 512 KiB are refused with 413", async () => {
    const p = randomPrefix()
    const res = await fetch(`${suite.consul.addr}/v1/kv/${p}/big`, {
      method: "PUT",
      body: Buffer.alloc(512 * 1024 + 1)
    })
    assert.equal(res.status, 413)
    await res.text()
    assert.equal(await suite.c.kv.get(`${p}/big`), undefined)
  })

  test("tokens are accepted", async () => {
    const p = randomPrefix()
    const res = await fetch(`${suite.consul.addr}/v1/kv/${p}/tok`, {
      method: "PUT",
      body: "v",
      headers: { "X-Consul-Token": "anything" }
    })
    // A real Consul with ACLs off ignores the token too; with ACLs on this test
    // needs CONSUL_HTTP_TOKEN and is not meant for that setup.
    assert.equal(res.status, 200)
  })
})
