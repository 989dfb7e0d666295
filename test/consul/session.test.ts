// Sessions tied to a scope: renewed while the scope is open, destroyed when it closes,
// and `lost` completing when the session disappears underneath.

import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { acquireLock, LOCK_FLAGS } from "../../src/consul/lock.ts"
import { openSession, session } from "../../src/consul/session.ts"
import { consulForTest, eventually, sleep } from "./support.ts"

test("a renewed session keeps its key past the TTL; an unrenewed one loses it", async (t) => {
  const { consul, fork, prefix, run } = await consulForTest(t)
  const ready = await run(Deferred.make<string>())
  fork(Effect.gen(function*() {
    const id = yield* session({ name: `${prefix}-renewed`, ttl: "10s", behavior: "delete" })
    assert.equal(yield* consul.put(`${prefix}/renewed`, "alive", { acquire: id }), true)
    yield* Deferred.succeed(ready, id)
    yield* Effect.never
  }))
  const renewedId = await run(Deferred.await(ready))
  const bareId = await run(consul.createSession({ name: `${prefix}-bare`, ttl: "10s", behavior: "delete" }))
  assert.equal(await run(consul.put(`${prefix}/bare`, "alive", { acquire: bareId })), true)

  // Consul expires a session between TTL and 2×TTL after its last renewal.
  await sleep(22_500)
  assert.equal((await run(consul.get(`${prefix}/bare`))).value, undefined)
  assert.equal(await run(consul.sessionInfo(bareId)), undefined)
  const kept = (await run(consul.get(`${prefix}/renewed`))).value
  assert.equal(kept?.session, renewedId)
  assert.equal((await run(consul.sessionInfo(renewedId)))?.id, renewedId)
})

test("closing the scope destroys the session, which releases its lock", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/lock`
  const id = await run(Effect.gen(function*() {
    const id = yield* session({ name: `${prefix}-s`, ttl: "15s", behavior: "release", lockDelay: "0s" })
    yield* acquireLock(key, id, { value: "me" })
    assert.equal((yield* consul.get(key)).value?.session, id)
    return id
  }))
  const after = (await run(consul.get(key))).value
  assert.equal(after?.session, undefined)
  assert.equal(after?.value, "me")
  assert.equal(after?.flags, LOCK_FLAGS)
  assert.equal(await run(consul.sessionInfo(id)), undefined)
})

test("lost completes when the session is destroyed from outside", async (t) => {
  const { consul, fork, prefix, run } = await consulForTest(t)
  const reason = await run(Deferred.make<string>())
  const opened = await run(Deferred.make<string>())
  fork(Effect.gen(function*() {
    const s = yield* openSession({ name: `${prefix}-s`, ttl: "10s", behavior: "release" })
    yield* Deferred.succeed(opened, s.id)
    yield* Deferred.succeed(reason, yield* s.lost)
  }))
  const id = await run(Deferred.await(opened))
  await run(consul.destroySession(id))
  const started = Date.now()
  let why = ""
  void run(Deferred.await(reason)).then((r) => {
    why = r
  })
  await eventually(() => why !== "", 8_000, "lost") // the next renewal, at TTL/2
  assert.match(why, /gone/)
  assert.ok(Date.now() - started < 8_000)
})
