// What a blocking query on a missing key waits for in dev-consul: writes near it, as
// Consul's radix-tree watch for it (src/devconsul/kv-endpoint.ts, `nearby`), not every
// KV write. With a
// thousand nodes each watching a missing `lock` key, a write anywhere answered all of
// them; in Consul a write in another app's folder answers none.

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

test("a missing key's blocking query is answered by a write in its folder, not by one in another folder", async (t) => {
  const dev = await startDevConsul({ port: 0 })
  t.after(() => dev.close())
  const kv = (key: string) => `${dev.url}/v1/kv/${key}`
  await send(kv("sacar/app0/config"), "PUT", "{}")
  await send(kv("sacar/app1/config"), "PUT", "{}")
  const first = await send(kv("sacar/app0/lock"), "GET")
  assert.equal(first.status, 404)

  const held = send(`${kv("sacar/app0/lock")}?index=${first.index}&wait=30s`, "GET")
  await eventually("the blocking query held", () => dev.store.listenerCount === 1, 5_000)
  // The store wakes waiters inside the write, before the PUT is answered.
  await send(kv("sacar/app1/status/node-1"), "PUT", "{}")
  await send(kv("sacar/_nodes/node-1"), "PUT", "{}")
  assert.equal(dev.store.listenerCount, 1, "writes outside sacar/app0/ left the query held")

  await send(kv("sacar/app0/status/node-1"), "PUT", "{}")
  const answered = await held
  assert.equal(answered.status, 404)
  assert.ok(answered.index > first.index)
})

test("a missing key that other keys extend waits for writes under its name, not for status writes in its folder", async (t) => {
  const dev = await startDevConsul({ port: 0 })
  t.after(() => dev.close())
  const kv = (key: string) => `${dev.url}/v1/kv/${key}`
  await send(kv("sacar/app0/config"), "PUT", "{}")
  await send(kv("sacar/app0/locks/deploy/ticket"), "PUT", "")
  const first = await send(kv("sacar/app0/lock"), "GET")
  assert.equal(first.status, 404)

  const held = send(`${kv("sacar/app0/lock")}?index=${first.index}&wait=30s`, "GET")
  await eventually("the blocking query held", () => dev.store.listenerCount === 1, 5_000)
  // In Consul the nearest radix node of sacar/app0/lock is that of sacar/app0/locks/.
  await send(kv("sacar/app0/status/node-1"), "PUT", "{}")
  assert.equal(dev.store.listenerCount, 1, "a status write left the query held")
  await send(kv("sacar/app0/locks/deploy/0/tail"), "PUT", "x")
  const answered = await held
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
