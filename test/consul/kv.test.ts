// The Consul layer's KV, transaction and status calls against startConsul().

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import assert from "node:assert/strict"
import { test } from "node:test"
import { consulForTest } from "./harness.ts"

test("put, get, list, keys and delete round-trip UTF-8 values with indexes", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  assert.equal(await run(consul.put(`${prefix}/a`, "héllo ✓")), true)
  assert.equal(await run(consul.put(`${prefix}/b/c`, "")), true)
  assert.equal(await run(consul.put(`${prefix}/b/d`, "{\"x\":1}")), true)

  const a = await run(consul.get(`${prefix}/a`))
  assert.equal(a.value?.key, `${prefix}/a`)
  assert.equal(a.value?.value, "héllo ✓")
  assert.equal(a.value?.flags, "0")
  assert.ok(a.index >= 1)
  assert.equal(a.index, a.value?.modifyIndex)

  const empty = await run(consul.get(`${prefix}/b/c`))
  assert.equal(empty.value?.value, null)

  const listed = await run(consul.list(`${prefix}/`))
  assert.deepEqual(listed.value.map((e) => e.key), [`${prefix}/a`, `${prefix}/b/c`, `${prefix}/b/d`])
  assert.equal(listed.value[2]?.value, "{\"x\":1}")
  assert.equal(listed.index, Math.max(...listed.value.map((e) => e.modifyIndex)))

  assert.deepEqual(await run(consul.keys(`${prefix}/`)), [`${prefix}/a`, `${prefix}/b/c`, `${prefix}/b/d`])
  assert.deepEqual(await run(consul.keys(`${prefix}/`, "/")), [`${prefix}/a`, `${prefix}/b/`])

  assert.equal(await run(consul.delete(`${prefix}/b`, { recurse: true })), true)
  assert.deepEqual(await run(consul.keys(`${prefix}/`)), [`${prefix}/a`])
  assert.equal(await run(consul.delete(`${prefix}/a`)), true)
  assert.equal(await run(consul.delete(`${prefix}/never-was`)), true)
})

test("a missing key is undefined with an index, a missing prefix is empty", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const missing = await run(consul.get(`${prefix}/nope`))
  assert.equal(missing.value, undefined)
  assert.ok(missing.index >= 1)
  const none = await run(consul.list(`${prefix}/`))
  assert.deepEqual(none.value, [])
  assert.ok(none.index >= 1)
  assert.deepEqual(await run(consul.keys(`${prefix}/`)), [])
})

test("cas creates only when absent, then only at the current ModifyIndex", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/cas`
  assert.equal(await run(consul.put(key, "one", { cas: 0 })), true)
  assert.equal(await run(consul.put(key, "again", { cas: 0 })), false)
  const first = (await run(consul.get(key))).value!
  assert.equal(await run(consul.put(key, "two", { cas: first.modifyIndex + 1000 })), false)
  assert.equal(await run(consul.put(key, "two", { cas: first.modifyIndex })), true)
  assert.equal(await run(consul.put(key, "three", { cas: first.modifyIndex })), false)
  assert.equal((await run(consul.get(key))).value?.value, "two")
  const second = (await run(consul.get(key))).value!
  assert.equal(await run(consul.delete(key, { cas: first.modifyIndex })), false)
  assert.equal((await run(consul.get(key))).value?.value, "two")
  assert.equal(await run(consul.delete(key, { cas: second.modifyIndex })), true)
  assert.equal((await run(consul.get(key))).value, undefined)
})

test("flags above 2^53 are written and read back exactly", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/flags`
  assert.equal(await run(consul.put(key, "v", { flags: "3304740253564472344" })), true)
  assert.equal((await run(consul.get(key))).value?.flags, "3304740253564472344")
  assert.equal(await run(consul.put(key, "v", { flags: 16210313421097356768n })), true)
  assert.equal((await run(consul.list(`${prefix}/`))).value[0]?.flags, "16210313421097356768")
  const bad = await run(Effect.exit(consul.put(key, "v", { flags: "-1" })))
  assert.ok(Exit.isFailure(bad))
})

test("a transaction applies all its ops under one index, or none of them", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const ok = await run(consul.txn([
    { verb: "set", key: `${prefix}/x`, value: "1" },
    { verb: "set", key: `${prefix}/y`, value: "2", flags: "3304740253564472344" },
    { verb: "check-not-exists", key: `${prefix}/z` }
  ]))
  assert.equal(ok.ok, true)
  assert.ok(ok.ok)
  assert.deepEqual(ok.entries.map((e) => e.key), [`${prefix}/x`, `${prefix}/y`])
  assert.equal(ok.entries[0]?.modifyIndex, ok.entries[1]?.modifyIndex)
  assert.equal((await run(consul.get(`${prefix}/y`))).value?.flags, "3304740253564472344")

  const x = (await run(consul.get(`${prefix}/x`))).value!
  const rolled = await run(consul.txn([
    { verb: "set", key: `${prefix}/x`, value: "changed" },
    { verb: "set", key: `${prefix}/new`, value: "n" },
    { verb: "check-index", key: `${prefix}/y`, index: x.modifyIndex + 999 },
    { verb: "check-not-exists", key: `${prefix}/x` }
  ]))
  assert.equal(rolled.ok, false)
  assert.ok(!rolled.ok)
  assert.deepEqual(rolled.errors.map((e) => e.opIndex).sort(), [2, 3])
  assert.ok(rolled.errors.every((e) => e.what.length > 0))
  assert.equal((await run(consul.get(`${prefix}/x`))).value?.value, "1")
  assert.equal((await run(consul.get(`${prefix}/new`))).value, undefined)

  const read = await run(consul.txn([{ verb: "get", key: `${prefix}/x` }, { verb: "get-tree", key: `${prefix}/` }]))
  assert.ok(read.ok)
  assert.equal(read.entries[0]?.value, "1")
  assert.deepEqual(read.entries.slice(1).map((e) => e.key), [`${prefix}/x`, `${prefix}/y`])
})

test("a blocking get returns when the key changes, and the index moves", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/block`
  await run(consul.put(key, "one"))
  const first = await run(consul.get(key))
  const started = Date.now()
  const blocked = run(consul.get(key, { index: first.index, wait: "10s" }))
  setTimeout(() => void run(consul.put(key, "two")), 200)
  const second = await blocked
  assert.equal(second.value?.value, "two")
  assert.ok(second.index > first.index)
  assert.ok(Date.now() - started < 5_000)
})

test("a blocking get that times out returns the unchanged value", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/quiet`
  await run(consul.put(key, "same"))
  const first = await run(consul.get(key))
  const started = Date.now()
  const again = await run(consul.get(key, { index: first.index, wait: "1s" }))
  assert.ok(Date.now() - started >= 900)
  assert.equal(again.index, first.index)
  assert.equal(again.value?.value, "same")
})

test("sessions: create, info, renew, destroy; renew answers the TTL, and undefined once the session is gone", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const id = await run(consul.createSession({ name: `${prefix}-s`, ttl: "10s", behavior: "delete", lockDelay: "1s" }))
  const info = await run(consul.sessionInfo(id))
  assert.equal(info?.id, id)
  assert.equal(info?.name, `${prefix}-s`)
  assert.equal(info?.behavior, "delete")
  assert.equal(info?.lockDelayNs, 1_000_000_000)
  assert.equal(await run(consul.renewSession(id)), "10s")
  await run(consul.destroySession(id))
  assert.equal(await run(consul.sessionInfo(id)), undefined)
  assert.equal(await run(consul.renewSession(id)), undefined)
})

test("a bad request is a ConsulRequestError carrying Consul's message", async (t) => {
  const { consul, run } = await consulForTest(t)
  const exit = await run(Effect.exit(consul.createSession({ name: "x", ttl: "1s", behavior: "release" })))
  assert.ok(Exit.isFailure(exit))
  const error = exit.cause.reasons[0]
  assert.ok(error !== undefined && error._tag === "Fail")
  assert.equal(error.error._tag, "ConsulRequestError")
  assert.match(error.error.message, /TTL/i)
})

test("leader answers with the leader's address", async (t) => {
  const { consul, run } = await consulForTest(t)
  assert.match(await run(consul.leader()), /:\d+$/)
})
