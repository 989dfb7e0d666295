// Locks in the Go api's layout: mutual exclusion, lock-delay, release, loss, and
// agreement with what `consul lock` writes and expects.

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import assert from "node:assert/strict"
import { test } from "node:test"
import { acquireLock, LOCK_FLAGS, releaseLock, tryLock, watchLockLost } from "../../src/consul/lock.ts"
import { session } from "../../src/consul/session.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { consulForTest } from "./harness.ts"

test("two sessions exclude each other; the waiter gets the lock when it is released", async (t) => {
  const { cleanup, consul, fork, prefix, run } = await consulForTest(t)
  const key = `${prefix}/leader`
  const a = await run(consul.createSession({ name: "a", ttl: "30s", behavior: "release", lockDelay: "0s" }))
  const b = await run(consul.createSession({ name: "b", ttl: "30s", behavior: "release", lockDelay: "0s" }))
  cleanup(Effect.all([consul.destroySession(a), consul.destroySession(b)]))

  assert.equal(await run(tryLock(key, a, { value: "replica-a" })), true)
  assert.equal(await run(tryLock(key, a)), true) // already ours
  assert.equal(await run(tryLock(key, b)), false)
  const held = (await run(consul.get(key))).value
  assert.equal(held?.session, a)
  assert.equal(held?.value, "replica-a")
  assert.equal(held?.flags, LOCK_FLAGS)

  let bHolds = false
  const waiter = fork(
    acquireLock(key, b, { value: "replica-b", wait: "10s" }).pipe(Effect.tap(() =>
      Effect.sync(() => {
        bHolds = true
      })
    ))
  )
  let aLost = ""
  fork(
    watchLockLost(key, a, { wait: "10s" }).pipe(Effect.tap((why) =>
      Effect.sync(() => {
        aLost = why
      })
    ))
  )
  await sleep(500)
  assert.equal(bHolds, false)
  assert.equal(aLost, "")

  assert.equal(await run(releaseLock(key, b)), false) // not b's to release
  assert.equal(await run(releaseLock(key, a)), true)
  await eventually("b to take the lock", () => bHolds, 5_000)
  assert.ok(Exit.isSuccess(await waiter.exit))
  await eventually("a's monitor to report the loss", () => aLost !== "", 5_000)
  assert.match(aLost, /held by session|released/)
  const now = (await run(consul.get(key))).value
  assert.equal(now?.session, b)
  assert.equal(now?.value, "replica-b")
})

test("acquireLock waits out the lock-delay after the holder's session dies", async (t) => {
  const { cleanup, consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/delayed`
  const a = await run(consul.createSession({ name: "a", ttl: "30s", behavior: "release", lockDelay: "3s" }))
  const b = await run(consul.createSession({ name: "b", ttl: "30s", behavior: "release", lockDelay: "0s" }))
  cleanup(consul.destroySession(b))
  assert.equal(await run(tryLock(key, a)), true)
  await run(consul.destroySession(a)) // invalidation: the key is free but lock-delayed
  const freedAt = Date.now()
  assert.equal((await run(consul.get(key))).value?.session, undefined)
  assert.equal(await run(tryLock(key, b)), false)
  await run(acquireLock(key, b, { lockDelayRetryMs: 500 }))
  const waited = Date.now() - freedAt
  assert.ok(waited >= 2_500, `acquired after ${waited} ms, inside the 3 s lock-delay`)
  assert.ok(waited < 6_000, `acquired after ${waited} ms`)
  assert.equal((await run(consul.get(key))).value?.session, b)
})

test("watchLockLost reports a destroyed session", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/monitored`
  const a = await run(consul.createSession({ name: "a", ttl: "30s", behavior: "release", lockDelay: "0s" }))
  assert.equal(await run(tryLock(key, a)), true)
  const lost = run(watchLockLost(key, a, { wait: "10s" }))
  await sleep(300)
  await run(consul.destroySession(a))
  assert.match(await lost, /released/)
})

test("interop with the Go layout: flags read back exactly, a `consul lock` holder is respected", async (t) => {
  const { cleanup, consul, prefix, run } = await consulForTest(t)
  // What `consul lock -n=1 <prefix> cmd` writes: <prefix>/.lock, acquired with the lock flags.
  const key = `${prefix}/.lock`
  const goSession = await run(
    consul.createSession({
      name: `Consul lock for 'cmd' at '${prefix}'`,
      ttl: "15s",
      behavior: "release",
      lockDelay: "0s"
    })
  )
  assert.equal(await run(consul.put(key, "", { acquire: goSession, flags: 3304740253564472344n })), true)
  const ours = await run(consul.createSession({ name: "sacar", ttl: "15s", behavior: "release", lockDelay: "0s" }))
  cleanup(Effect.all([consul.destroySession(goSession), consul.destroySession(ours)]))
  assert.equal((await run(consul.get(key))).value?.flags, "3304740253564472344")
  assert.equal(await run(tryLock(key, ours)), false)
  // And ours is what the Go client expects to find.
  await run(consul.put(key, "", { release: goSession, flags: LOCK_FLAGS }))
  assert.equal(await run(tryLock(key, ours)), true)
  const entry = (await run(consul.get(key))).value!
  assert.equal(entry.flags, "3304740253564472344")
  assert.equal(entry.session, ours)
  assert.ok(entry.lockIndex >= 2)

  // A semaphore's coordination key is not a lock (consul lock -n=2 on the same prefix).
  const semKey = `${prefix}/sem/.lock`
  // api.SemaphoreFlagValue, what `consul lock -n=2` writes.
  const SEMAPHORE_FLAGS = "16210313421097356768"
  await run(consul.put(semKey, "{\"Limit\":2,\"Holders\":{}}", { flags: SEMAPHORE_FLAGS }))
  const conflict = await run(Effect.exit(tryLock(semKey, ours)))
  assert.ok(Exit.isFailure(conflict))
  const reason = conflict.cause.reasons[0]
  assert.ok(reason?._tag === "Fail" && reason.error._tag === "LockConflict")
})

test("acquireLock is interruptible while waiting and fails for a dead session", async (t) => {
  const { cleanup, consul, fork, prefix, run } = await consulForTest(t)
  const key = `${prefix}/busy`
  const a = await run(consul.createSession({ name: "a", ttl: "30s", behavior: "release", lockDelay: "0s" }))
  const b = await run(consul.createSession({ name: "b", ttl: "30s", behavior: "release", lockDelay: "0s" }))
  cleanup(Effect.all([consul.destroySession(a), consul.destroySession(b)]))
  assert.equal(await run(tryLock(key, a)), true)
  const waiting = fork(acquireLock(key, b, { wait: "10s" }))
  await sleep(300)
  const started = Date.now()
  await waiting.interrupt()
  assert.ok(Date.now() - started < 1_000)
  assert.equal((await run(consul.get(key))).value?.session, a)

  const dead = await run(consul.createSession({ name: "dead", ttl: "30s", behavior: "release" }))
  await run(consul.destroySession(dead))
  const exit = await run(Effect.exit(acquireLock(`${prefix}/free`, dead).pipe(Effect.timeout("5 seconds"))))
  assert.ok(Exit.isFailure(exit))
  const reason = exit.cause.reasons[0]
  assert.ok(reason?._tag === "Fail" && reason.error._tag === "ConsulRequestError", String(reason))
})

test("a scoped session plus acquireLock is the leader-election shape", async (t) => {
  const { consul, prefix, run } = await consulForTest(t)
  const key = `${prefix}/_controller/leader`
  const heldBy = await run(Effect.gen(function*() {
    const id = yield* session({ name: "controller", ttl: "15s", behavior: "release", lockDelay: "0s" })
    yield* acquireLock(key, id, { value: "replica-1" })
    return (yield* consul.get(key)).value?.session === id
  }))
  assert.equal(heldBy, true)
  assert.equal((await run(consul.get(key))).value?.session, undefined) // released with the scope
})
