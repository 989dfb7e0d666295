// What a blocking query on a missing key or an empty prefix waits for in dev-consul:
// writes near it, as Consul's radix-tree watch for it (src/devconsul/kv-endpoint.ts,
// `nearby`), not every KV write. With a thousand nodes each watching a missing `lock`
// key, a write anywhere woke all of them; in Consul a write in another app's folder
// wakes none.

import assert from "node:assert/strict"
import { request } from "node:http"
import { test } from "node:test"
import { nearby } from "../../src/devconsul/kv-endpoint.ts"
import { startDevConsul } from "../../src/devconsul/server.ts"
import { eventually } from "../support/eventually.ts"

const send = (url: string, method: string, body?: string) =>
  new Promise<{ status: number; index: number; body: string }>((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      const chunks: Buffer[] = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          index: Number(res.headers["x-consul-index"]),
          body: Buffer.concat(chunks).toString()
        }))
    })
    req.on("error", reject)
    req.end(body)
  })

test("an empty prefix's blocking list is answered by a write in its folder, not by one in another folder", async (t) => {
  // A missing key's read is no longer answered at all by writes near it (blocking.test.ts:
  // Consul's "still not found" rule); an empty prefix has no such rule, so the folder
  // it waits on shows in when it answers.
  const dev = await startDevConsul({ port: 0 })
  t.after(() => dev.close())
  const kv = (key: string) => `${dev.url}/v1/kv/${key}`
  await send(kv("sacar/app0/config"), "PUT", "{}")
  await send(kv("sacar/app1/config"), "PUT", "{}")
  const first = await send(`${kv("sacar/app0/releases/")}?recurse`, "GET")
  assert.equal(first.status, 404)

  const held = send(`${kv("sacar/app0/releases/")}?recurse&index=${first.index}&wait=30s`, "GET")
  await eventually("the blocking query held", () => dev.store.listenerCount === 1, 5_000)
  // The store wakes waiters inside the write, before the PUT is answered.
  await send(kv("sacar/app1/status/node-1"), "PUT", "{}")
  await send(kv("sacar/_nodes/node-1"), "PUT", "{}")
  assert.equal(dev.store.listenerCount, 1, "writes outside sacar/app0/ left the query held")

  const startedAt = Date.now()
  await send(kv("sacar/app0/status/node-1"), "PUT", "{}")
  const answered = await held
  assert.ok(Date.now() - startedAt < 10_000, "answered by the write, not by the end of the wait")
  assert.equal(answered.status, 404)
  assert.ok(answered.index > first.index)
})

test("what a missing key waits for follows the keys that extend it as they come and go", async (t) => {
  const dev = await startDevConsul({ port: 0 })
  t.after(() => dev.close())
  const kv = (key: string) => `${dev.url}/v1/kv/${key}`
  assert.deepEqual(nearby(dev.store, "sacar/app0/lock"), { kind: "prefix", prefix: "sacar/app0/" })
  await send(kv("sacar/app0/locks/a"), "PUT", "")
  assert.deepEqual(nearby(dev.store, "sacar/app0/lock"), { kind: "prefix", prefix: "sacar/app0/lock" })
  await send(kv("sacar/app0/locks/b"), "PUT", "")
  await send(kv("sacar/app0/locks/a"), "DELETE")
  assert.deepEqual(nearby(dev.store, "sacar/app0/lock"), { kind: "prefix", prefix: "sacar/app0/lock" })
  await send(`${kv("sacar/app0/locks/")}?recurse`, "DELETE")
  assert.deepEqual(nearby(dev.store, "sacar/app0/lock"), { kind: "prefix", prefix: "sacar/app0/" })
  assert.deepEqual(nearby(dev.store, "sacar/app0/releases/"), { kind: "prefix", prefix: "sacar/app0/" })
  assert.deepEqual(nearby(dev.store, "sacar/"), { kind: "prefix", prefix: "" })
})
