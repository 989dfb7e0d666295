// Sessions tied to a scope: renewed while the scope is open, destroyed when it closes,
// and `lost` completing when the session disappears underneath.

import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Consul, ConsulUnavailable } from "../../src/consul/consul.ts"
import type { ConsulError } from "../../src/consul/consul.ts"
import { acquireLock, LOCK_FLAGS } from "../../src/consul/lock.ts"
import { openSession, session } from "../../src/consul/session.ts"
import { consulStandIn } from "../support/consul-stand-in.ts"
import { eventually } from "../support/eventually.ts"
import { consulForTest } from "./harness.ts"

// On TestClock, against a stand-in Consul that answers renewals as told: the renewal's
// pacing and the TTL rule for `lost`, without waiting out a real TTL. (dev-consul's own
// expiry of unrenewed sessions is test/devconsul/session.test.ts's.)
const sessionConsul = (renewals: Array<number>, answer: () => Effect.Effect<string | undefined, ConsulError>) => {
  return consulStandIn("sessions", {
    createSession: () => Effect.succeed("s-1"),
    renewSession: () =>
      Clock.currentTimeMillis.pipe(
        Effect.tap((now) => Effect.sync(() => renewals.push(now))),
        Effect.andThen(Effect.suspend(answer))
      ),
    destroySession: () => Effect.void
  })
}

test("a session is renewed every TTL/2 and stays; unanswered renewals mean lost one TTL later", async () => {
  const renewals: Array<number> = []
  let up = true
  const down = new ConsulUnavailable({ address: "fake", operation: "renew", message: "down" })
  const reason = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const s = yield* openSession({ name: "t", ttl: "10s", behavior: "delete" })
      const lost = yield* Effect.forkChild(s.lost)
      yield* TestClock.adjust("25 seconds")
      assert.deepEqual(renewals, [5_000, 10_000, 15_000, 20_000, 25_000])
      assert.equal(lost.pollUnsafe(), undefined)
      up = false
      // Last good renewal at 25 s: retried every second, presumed gone at 35 s.
      yield* TestClock.adjust("9 seconds")
      assert.equal(lost.pollUnsafe(), undefined)
      yield* TestClock.adjust("1 second")
      return yield* Fiber.join(lost)
    })).pipe(
      Effect.provide(Layer.merge(
        sessionConsul(renewals, () => (up ? Effect.succeed("10s") : Effect.fail(down))),
        TestClock.layer()
      ))
    )
  )
  assert.match(reason, /not renewed within its TTL/)
  // The next renewal at TTL/2, then again every second until the TTL is up.
  assert.deepEqual(renewals.filter((at) => at > 25_000), [30_000, 31_000, 32_000, 33_000, 34_000])
})

test("with SACAR_SESSION_TTL_MIN, the session's clock starts from the raised TTL, not the one the caller named", async () => {
  const renewals: Array<number> = []
  const given = consulStandIn("sessions", {
    createSession: () => Effect.succeed("s-1"),
    // A renewal that never answers (a starved process, a slow server): the session is
    // lost only when the TTL Consul was asked for (60 s) has passed, not the caller's 10 s.
    renewSession: () =>
      Clock.currentTimeMillis.pipe(
        Effect.tap((now) => Effect.sync(() => renewals.push(now))),
        Effect.andThen(Effect.never)
      ),
    destroySession: () => Effect.void
  })
  const raised = Layer.effect(
    Consul,
    Effect.gen(function*() {
      const c = yield* Consul
      return Consul.of({ ...c, sessionTtlMinMs: 60_000 })
    })
  ).pipe(Layer.provide(given))
  const reason = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const s = yield* openSession({ name: "t", ttl: "10s", behavior: "delete" })
      const lost = yield* Effect.forkChild(s.lost)
      yield* TestClock.adjust("59 seconds")
      assert.equal(lost.pollUnsafe(), undefined, "still held within the 60 s Consul runs it with")
      yield* TestClock.adjust("2 seconds")
      return yield* Fiber.join(lost)
    })).pipe(Effect.provide(Layer.merge(raised, TestClock.layer())))
  )
  assert.match(reason, /TTL \(60s\)/)
  assert.equal(renewals[0], 30_000, "first renewal at half the raised TTL")
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
  await eventually("lost", () => why !== "", 8_000) // the next renewal, at TTL/2
  assert.match(why, /gone/)
  assert.ok(Date.now() - started < 8_000)
})
