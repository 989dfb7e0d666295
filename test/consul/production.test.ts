// The client on the paths only a production Consul takes, switched on in dev-consul
// (src/devconsul/production.ts): rate limiting, requests that hang through a leader
// election, sessions Consul expires at twice their TTL or with their node, tombstones
// reaped under a watcher. These need dev-consul's switches; against a real Consul
// (CONSUL_HTTP_ADDR) they skip.
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Stream from "effect/Stream"
import assert from "node:assert/strict"
import { test } from "node:test"
import type { TestContext } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import type { ConsulRequestError } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { acquireLock, watchLockLost } from "../../src/consul/lock.ts"
import { openSession } from "../../src/consul/session.ts"
import { watchPrefix } from "../../src/consul/watch.ts"
import { registerConsulNodes } from "../support/consul.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { consulForTest } from "./harness.ts"

const settings = async (addr: string, body: Record<string, unknown>) => {
  const res = await fetch(`${addr}/v1/dev-consul/settings`, { method: "PUT", body: JSON.stringify(body) })
  const text = await res.text()
  assert.equal(res.status, 200, text)
  return JSON.parse(text) as { Faulted: number }
}

const production = async (t: TestContext, options: Parameters<typeof consulForTest>[1] = {}) => {
  const c = await consulForTest(t, options)
  if (c.real) t.skip("needs dev-consul's production switches")
  return c
}

test("429s are transient: a lock is acquired through a burst of rate limiting, and Retry-After-less 429s read as ConsulUnavailable", async (t) => {
  const { addr, consul, prefix, real, run } = await production(t)
  if (real) return
  // Backoff may wait a while between refusals: a TTL that outlives it.
  const id = await run(consul.createSession({ name: `${prefix}-s`, ttl: "1h", behavior: "release", lockDelay: "0s" }))
  await settings(addr, { FaultStatus: 429, FaultShare: 1 })
  const refused = await run(Effect.flip(consul.get(`${prefix}/x`)))
  assert.equal(refused._tag, "ConsulUnavailable")
  assert.match(refused.message, /HTTP 429/)
  const before = (await settings(addr, { FaultShare: 0.3 })).Faulted
  // Lock after lock until some of their requests were refused (each has a 30% chance).
  let locks = 0
  while ((await settings(addr, {})).Faulted - before < 3 && locks < 50) {
    await run(acquireLock(`${prefix}/lock-${locks++}`, id, { value: "me" }))
  }
  const { Faulted } = await settings(addr, { FaultShare: 0 })
  assert.ok(Faulted - before >= 3, `requests were refused with 429 meanwhile (${Faulted - before})`)
  for (let i = 0; i < locks; i++) assert.equal((await run(consul.get(`${prefix}/lock-${i}`))).value?.session, id)
})

test("a session whose renewals hang is given up within its TTL, before Consul (2×TTL) expires it", async (t) => {
  const { addr, fork, prefix, real, run } = await production(t, { production: { sessionTtlMultiplier: 2 } })
  if (real) return
  const opened = await run(Deferred.make<void>())
  const lostAt = await run(Deferred.make<number>())
  fork(Effect.gen(function*() {
    const s = yield* openSession({ name: `${prefix}-s`, ttl: "10s", behavior: "release", lockDelay: "0s" })
    yield* Deferred.succeed(opened, undefined)
    yield* s.lost
    yield* Deferred.succeed(lostAt, yield* Clock.currentTimeMillis)
  }))
  await run(Deferred.await(opened))
  // From now on nothing is answered, as while Consul elects a leader. The last good
  // renewal was at or before this moment.
  const hungAt = Date.now()
  await settings(addr, { FaultStatus: "hang", FaultShare: 1 })
  let at: number
  try {
    at = await run(Deferred.await(lostAt))
  } finally {
    await settings(addr, { FaultShare: 0 })
  }
  const tookMs = at - hungAt
  assert.ok(tookMs <= 10_000 + 500, `noticed ${tookMs} ms after the last possible renewal; the TTL is 10 s`)
})

test("a lock monitor whose reads hang reports the lock lost within unconfirmedForMs", async (t) => {
  const { addr, consul, prefix, real, run } = await production(t)
  if (real) return
  const id = await run(consul.createSession({ name: `${prefix}-s`, ttl: "30s", behavior: "release", lockDelay: "0s" }))
  await run(acquireLock(`${prefix}/lock`, id))
  const monitor = run(Effect.gen(function*() {
    const reason = yield* watchLockLost(`${prefix}/lock`, id, { unconfirmedForMs: 4_000 })
    return { reason, at: yield* Clock.currentTimeMillis }
  }))
  // Let the first read confirm ownership, then stop answering.
  await sleep(300)
  const hungAt = Date.now()
  await settings(addr, { FaultStatus: "hang", FaultShare: 1 })
  let outcome: { reason: string; at: number }
  try {
    outcome = await monitor
  } finally {
    await settings(addr, { FaultShare: 0 })
  }
  const { reason, at } = outcome
  assert.match(reason, /could not be confirmed/)
  // A read already in flight may still confirm ownership when its wait (2 s, half of
  // unconfirmedForMs, plus Consul's 1/16 jitter) ends; from then on 4 s is the bound.
  assert.ok(at - hungAt <= 2_125 + 4_000 + 500, `noticed after ${at - hungAt} ms`)
})

test("a session Consul expires at twice its TTL: alive past the TTL without renewals, gone by 2×TTL", async (t) => {
  const { addr, consul, prefix, real, run } = await production(t)
  if (real) return
  await settings(addr, { SessionTTLMultiplier: 2 })
  const created = Date.now()
  const id = await run(consul.createSession({ name: `${prefix}-s`, ttl: "10s", behavior: "delete", lockDelay: "0s" }))
  assert.equal(await run(consul.put(`${prefix}/held`, "v", { acquire: id })), true)
  // Past the TTL (10 s), never renewed: a production Consul still honours it.
  await sleep(14_000)
  assert.equal((await run(consul.sessionInfo(id)))?.id, id, "expired at 1×TTL")
  assert.equal((await run(consul.get(`${prefix}/held`))).value?.session, id, "its lock was released at 1×TTL")
  // By 2×TTL (and a little for the timer) it is gone, and its key with it.
  await eventually("the session to expire", async () => (await run(consul.sessionInfo(id))) === undefined, 10_000)
  const after = Date.now() - created
  assert.ok(after >= 19_000 && after <= 24_000, `expired ${after} ms after creation`)
  assert.equal((await run(consul.get(`${prefix}/held`))).value, undefined)
})

test("a session invalidated with its node: the holder notices within its TTL and the lock is released", async (t) => {
  const { addr, consul, fork, prefix, real, run } = await production(t)
  if (real) return
  const opened = await run(Deferred.make<string>())
  const lost = await run(Deferred.make<string>())
  fork(Effect.gen(function*() {
    const s = yield* openSession({
      name: `${prefix}-s`,
      ttl: "10s",
      behavior: "release",
      lockDelay: "0s",
      node: "web-9"
    })
    yield* acquireLock(`${prefix}/lock`, s.id)
    yield* Deferred.succeed(opened, s.id)
    yield* Deferred.succeed(lost, yield* s.lost)
  }))
  const id = await run(Deferred.await(opened))
  assert.equal((await run(consul.sessionInfo(id)))?.node, "web-9", "the session is on the node it was created for")
  const failedAt = Date.now()
  const res = await fetch(`${addr}/v1/dev-consul/node/web-9/fail`, { method: "PUT" })
  assert.deepEqual(await res.json(), { Invalidated: 1 })
  const reason = await run(Deferred.await(lost))
  assert.match(reason, /gone/)
  assert.ok(Date.now() - failedAt <= 10_000, `noticed after ${Date.now() - failedAt} ms`)
  assert.equal((await run(consul.get(`${prefix}/lock`))).value?.session, undefined)
})

test("a prefix whose tombstones are reaped goes back in index; its watcher resets and carries on", async (t) => {
  const { addr, consul, fork, prefix, real, run } = await production(t)
  if (real) return
  await run(consul.put(`${prefix}/a`, "1"))
  await run(consul.put(`${prefix}/b`, "2"))
  await run(consul.delete(`${prefix}/b`))
  const seen: Array<{ keys: string; index: number }> = []
  fork(
    Stream.runForEach(
      watchPrefix(`${prefix}/`, { wait: "2s" }),
      (r) => Effect.sync(() => seen.push({ keys: r.value.map((e) => e.key).join(","), index: r.index }))
    )
  )
  await eventually("the first listing", () => seen.length >= 1, 5_000)
  const before = seen.at(-1)!.index
  const res = await fetch(`${addr}/v1/dev-consul/tombstones/reap`, { method: "PUT" })
  assert.ok(((await res.json()) as { Reaped: number }).Reaped >= 1)
  await eventually("the index to go backwards", () => seen.some((s) => s.index < before), 5_000)
  // The watcher reset to 0 and still sees what happens next.
  await run(consul.put(`${prefix}/c`, "3"))
  await eventually("the write after the reap", () => seen.at(-1)?.keys === `${prefix}/a,${prefix}/c`, 5_000)
})

test("a key Consul 1.21.6+ refuses: a ConsulRequestError naming the key and why, on KV and in a txn", async (t) => {
  const { consul, prefix, real, run } = await production(t, { production: { refuseKeys: true } })
  if (real) return
  const put = await run(Effect.flip(consul.put(`${prefix}/trail `, "v")))
  assert.equal(put._tag, "ConsulRequestError")
  assert.equal((put as ConsulRequestError).status, 400)
  assert.match(put.message, new RegExp(`^Consul refused the key "${prefix}/trail ", which has leading or trailing`))
  const txn = await run(Effect.flip(consul.txn([
    { verb: "set", key: `${prefix}/ok`, value: "1" },
    { verb: "get", key: `${prefix}/../elsewhere` }
  ])))
  assert.equal(txn._tag, "ConsulRequestError")
  assert.match(txn.message, new RegExp(`^Consul refused the key "${prefix}/\\.\\./elsewhere", which contains`))
})

test("a session on a node Consul's catalog lacks: a ConsulRequestError telling the operator to fix SACAR_NODE", async (t) => {
  const { addr, consul, prefix, real, run } = await production(t, { production: { requireNodeRegistration: true } })
  if (real) return
  const refused = await run(Effect.flip(
    consul.createSession({ name: `${prefix}-s`, ttl: "10s", behavior: "release", node: "web-404" })
  ))
  assert.equal(refused._tag, "ConsulRequestError", "not retried as if Consul were unavailable")
  assert.match(refused.message, /^Missing node registration: Consul's catalog has no node "web-404"/)
  assert.match(
    refused.message,
    /SACAR_CONSUL_NODE \(default SACAR_NODE\), which must be the node name of the Consul agent/
  )
  // Registered as a node's agent registers itself, the same session is created.
  await registerConsulNodes(addr, ["web-404"])
  assert.ok(await run(consul.createSession({ name: `${prefix}-s`, ttl: "10s", behavior: "release", node: "web-404" })))
})

test("sessions are created on the configured session node (SACAR_CONSUL_NODE) unless the caller names one", async (t) => {
  const { addr, consul, prefix, real, run } = await production(t)
  if (real) return
  await settings(addr, { RequireNodeRegistration: true })
  await registerConsulNodes(addr, ["agent-7"])
  const onAgent = ManagedRuntime.make(consulLayer({ address: addr, tls: { verify: true }, sessionNode: "agent-7" }))
  t.after(() => onAgent.dispose())
  const id = await onAgent.runPromise(Effect.gen(function*() {
    return yield* (yield* Consul).createSession({ name: `${prefix}-s`, ttl: "10s", behavior: "delete" })
  }))
  assert.equal((await run(consul.sessionInfo(id)))?.node, "agent-7")
  await run(consul.destroySession(id))
})
