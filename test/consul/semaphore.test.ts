// Semaphores in the Go api's layout: the limit holds, slots pass on release, dead
// holders are pruned, and the keys look like what `consul lock -n=N` writes.

import { Effect, Exit } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Consul } from "../../src/consul/Consul.ts"
import { tryLock } from "../../src/consul/lock.ts"
import { acquireSemaphore, SEMAPHORE_FLAGS } from "../../src/consul/semaphore.ts"
import { consulForTest, eventually, sleep } from "./support.ts"

test("a limit of 2 admits 2 of 3 holders; the third gets in when one releases or dies", async (t) => {
  const { cleanup, consul, fork, prefix, run } = await consulForTest(t)
  const sem = `${prefix}/shop/locks/deploy`
  const ids = await run(
    Effect.all(
      ["n1", "n2", "n3"].map((name) => consul.createSession({ name, ttl: "30s", behavior: "delete", lockDelay: "0s" }))
    )
  )
  cleanup(Effect.all(ids.map((id) => consul.destroySession(id))))
  const [s1, s2, s3] = ids as [string, string, string]
  const holding = new Set<string>()
  const hold = (id: string) =>
    fork(Effect.gen(function*() {
      yield* acquireSemaphore(sem, id, 2, { value: id, wait: "10s" })
      holding.add(id)
      yield* Effect.addFinalizer(() => Effect.sync(() => holding.delete(id)))
      return yield* Effect.never
    }))

  const h1 = hold(s1)
  await eventually(() => holding.has(s1), 5_000, "s1")
  hold(s2)
  await eventually(() => holding.has(s2), 5_000, "s2")
  const h3 = hold(s3)
  await sleep(500)
  assert.deepEqual([...holding].sort(), [s1, s2].sort())

  // The Go layout.
  const entries = (await run(consul.list(`${sem}/`))).value
  const lock = entries.find((e) => e.key === `${sem}/.lock`)!
  assert.equal(lock.flags, SEMAPHORE_FLAGS)
  assert.equal(lock.session, undefined)
  const doc = JSON.parse(lock.value!) as { Limit: number; Holders: Record<string, boolean> }
  assert.equal(doc.Limit, 2)
  assert.deepEqual(Object.keys(doc.Holders).sort(), [s1, s2].sort())
  for (const id of ids) {
    const contender = entries.find((e) => e.key === `${sem}/${id}`)
    assert.equal(contender?.session, id)
    assert.equal(contender?.flags, "16210313421097356768")
  }

  // Releasing (closing s1's scope) hands its slot to s3. A waiter watches one holder's
  // key (not `.lock`, which would wake every waiter at every change); if it watches s2,
  // s1's release is seen at the end of its blocking wait (10 s here).
  await h1.interrupt()
  await eventually(() => holding.has(s3), 15_000, "s3 after s1 released")
  const afterRelease = (await run(consul.list(`${sem}/`))).value
  assert.equal(afterRelease.find((e) => e.key === `${sem}/${s1}`), undefined)
  const doc2 = JSON.parse(afterRelease.find((e) => e.key === `${sem}/.lock`)!.value!) as {
    Holders: Record<string, boolean>
  }
  assert.deepEqual(Object.keys(doc2.Holders).sort(), [s2, s3].sort())

  // A holder whose session dies is pruned by the next contender.
  const s4 = await run(consul.createSession({ name: "n4", ttl: "30s", behavior: "delete", lockDelay: "0s" }))
  cleanup(consul.destroySession(s4))
  hold(s4)
  await sleep(300)
  assert.equal(holding.has(s4), false)
  await run(consul.destroySession(s2)) // its contender key is deleted with it
  // A death is seen at once by a waiter watching that holder, else at the end of its
  // blocking wait (10 s here), when it checks every holder's key.
  await eventually(() => holding.has(s4), 15_000, "s4 after s2's session died")
  const doc3 = JSON.parse((await run(consul.get(`${sem}/.lock`))).value!.value!) as { Holders: Record<string, boolean> }
  assert.deepEqual(Object.keys(doc3.Holders).sort(), [s3, s4].sort())
  await h3.interrupt()
})

test("a waiter interrupted before it gets a slot leaves no contender key behind", async (t) => {
  const { cleanup, consul, fork, prefix, run } = await consulForTest(t)
  const sem = `${prefix}/sem`
  const a = await run(consul.createSession({ name: "a", ttl: "30s", behavior: "delete" }))
  const b = await run(consul.createSession({ name: "b", ttl: "30s", behavior: "delete" }))
  cleanup(Effect.all([consul.destroySession(a), consul.destroySession(b)]))
  let aHolds = false
  fork(
    acquireSemaphore(sem, a, 1).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          aHolds = true
        })
      ),
      Effect.andThen(Effect.never)
    )
  )
  await eventually(() => aHolds, 5_000, "a")
  const waiter = fork(acquireSemaphore(sem, b, 1, { wait: "10s" }))
  await eventually(async () => (await run(consul.get(`${sem}/${b}`))).value !== undefined, 5_000, "b's contender key")
  await waiter.interrupt()
  assert.equal((await run(consul.get(`${sem}/${b}`))).value, undefined)
  const doc = JSON.parse((await run(consul.get(`${sem}/.lock`))).value!.value!) as { Holders: Record<string, boolean> }
  assert.deepEqual(Object.keys(doc.Holders), [a])
})

test("a lock and a semaphore on the same key conflict, as with `consul lock`", async (t) => {
  const { cleanup, consul, prefix, run } = await consulForTest(t)
  const a = await run(consul.createSession({ name: "a", ttl: "30s", behavior: "delete" }))
  cleanup(consul.destroySession(a))
  // `consul lock -n=1 P` holds P/.lock as a lock; a semaphore on P must refuse.
  assert.equal(await run(tryLock(`${prefix}/.lock`, a)), true)
  const exit = await run(Effect.exit(acquireSemaphore(prefix, a, 2)))
  assert.ok(Exit.isFailure(exit))
  const reason = exit.cause.reasons[0]
  assert.ok(reason?._tag === "Fail" && reason.error._tag === "SemaphoreConflict")
  assert.match(reason.error.message, /flags/)
  // ...and the contender key it made on the way is gone again.
  assert.equal((await run(consul.get(`${prefix}/${a}`))).value, undefined)
})

test("a waiter's reads cost O(limit), not O(waiters): 16 waiters on one slot read a few entries per handoff", async (t) => {
  const { cleanup, consul, prefix, run } = await consulForTest(t)
  const sem = `${prefix}/shop/locks/deploy`
  const waiters = 16
  const ids = await run(
    Effect.all(
      Array.from(
        { length: waiters },
        (_, i) => consul.createSession({ name: `w${i}`, ttl: "30s", behavior: "delete", lockDelay: "0s" })
      )
    )
  )
  cleanup(Effect.all(ids.map((id) => consul.destroySession(id))))
  // Every KV entry any contender is sent, whatever the call (get, list, txn).
  let entriesRead = 0
  const counting = Consul.of({
    ...consul,
    get: (key, options) =>
      Effect.tap(consul.get(key, options), (r) => Effect.sync(() => entriesRead += r.value ? 1 : 0)),
    list: (p, options) => Effect.tap(consul.list(p, options), (r) => Effect.sync(() => entriesRead += r.value.length)),
    txn: (ops) => Effect.tap(consul.txn(ops), (r) => Effect.sync(() => entriesRead += r.ok ? r.entries.length : 0))
  })
  // Each contender holds the slot briefly and gives it back: 16 handoffs in a row.
  let held = 0
  await run(
    Effect.forEach(ids, (id) =>
      Effect.scoped(Effect.gen(function*() {
        yield* acquireSemaphore(sem, id, 1, { value: id, wait: "10s" })
        held++
        yield* Effect.sleep("50 millis")
      })).pipe(Effect.provideService(Consul, counting)), { concurrency: "unbounded" })
  )
  assert.equal(held, waiters)
  // The Go recipe lists every contender's key at every wake-up: about waiters² / 2
  // entries per waiter over the rollout (here ~2000 in all). Reading `.lock` and one
  // holder's key keeps it to a few entries per waiter per handoff.
  const perWaiterPerHandoff = entriesRead / waiters / waiters
  assert.ok(
    perWaiterPerHandoff <= 4,
    `${entriesRead} entries read: ${perWaiterPerHandoff.toFixed(1)} per waiter per handoff`
  )
})
