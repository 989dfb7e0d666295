// Deploy slots as FIFO lanes: the limit holds, slots pass on release and on a holder's
// death, a waiter that dies in the queue does not let the one behind it jump ahead, and
// what a waiter costs Consul does not grow with the number of waiters.

import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import { acquireSemaphore } from "../../src/consul/semaphore.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { consulForTest } from "./harness.ts"
import type { ConsulForTest } from "./harness.ts"

/** Sessions for contenders, destroyed after the test. */
const sessions = async (c: ConsulForTest, count: number) => {
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const id = await c.run(c.consul.createSession({ name: `w${i}`, ttl: "30s", behavior: "delete", lockDelay: "0s" }))
    c.cleanup(c.consul.destroySession(id))
    out.push(id)
  }
  return out
}

test("a limit of 2 admits 2 of 3 holders; the third gets in when one releases or dies", async (t) => {
  const c = await consulForTest(t)
  const { consul, fork, prefix, run } = c
  const sem = `${prefix}/shop/locks/deploy`
  // Tickets 1, 2, 3 are dealt to lanes 1, 0, 1: s3 queues behind s1.
  const [s1, s2, s3, s4] = await sessions(c, 4) as [string, string, string, string]
  const holding = new Set<string>()
  const hold = (id: string) =>
    fork(Effect.gen(function*() {
      yield* acquireSemaphore(sem, id, 2, { value: id })
      holding.add(id)
      yield* Effect.addFinalizer(() => Effect.sync(() => holding.delete(id)))
      return yield* Effect.never
    }))

  const h1 = hold(s1)
  await eventually("s1", () => holding.has(s1), 5_000)
  hold(s2)
  await eventually("s2", () => holding.has(s2), 5_000)
  const h3 = hold(s3)
  await sleep(500)
  assert.deepEqual([...holding].sort(), [s1, s2].sort())
  const held = (await run(consul.get(`${sem}/1/${s1}`))).value
  assert.equal(held?.session, s1)
  assert.deepEqual(JSON.parse(held!.value!), { node: s1, holding: true })

  // Releasing (closing s1's scope) hands its lane to s3 at once.
  await h1.interrupt()
  await eventually("s3 after s1 released", () => holding.has(s3), 5_000)
  assert.equal((await run(consul.get(`${sem}/1/${s1}`))).value, undefined)

  // A holder whose session dies frees its lane for the next in it: ticket 4 queues behind s2.
  hold(s4)
  await sleep(300)
  assert.equal(holding.has(s4), false)
  await run(consul.destroySession(s2)) // its key is deleted with it
  await eventually("s4 after s2's session died", () => holding.has(s4), 5_000)
  await h3.interrupt()
})

test("a waiter that dies in the queue does not let the one behind it in while the holder holds", async (t) => {
  const c = await consulForTest(t)
  const { consul, fork, prefix } = c
  const sem = `${prefix}/sem`
  const [a, b, w] = await sessions(c, 3) as [string, string, string]
  const holding = new Set<string>()
  const hold = (id: string) =>
    fork(Effect.gen(function*() {
      yield* acquireSemaphore(sem, id, 1, { value: id })
      holding.add(id)
      yield* Effect.addFinalizer(() => Effect.sync(() => holding.delete(id)))
      return yield* Effect.never
    }))
  const ha = hold(a)
  await eventually("a", () => holding.has(a), 5_000)
  hold(b)
  await eventually("b queued", async () => (await c.run(consul.get(`${sem}/0/${b}`))).value !== undefined, 5_000)
  hold(w)
  await eventually("w queued", async () => (await c.run(consul.get(`${sem}/0/${w}`))).value !== undefined, 5_000)
  // w's predecessor b dies while waiting: w must now wait for a, not take the lane.
  await c.run(consul.destroySession(b))
  await sleep(500)
  assert.deepEqual([...holding], [a])
  await ha.interrupt()
  await eventually("w after a released", () => holding.has(w), 5_000)
})

test("a waiter interrupted before it gets a slot leaves no contender key behind", async (t) => {
  const c = await consulForTest(t)
  const { consul, fork, prefix, run } = c
  const sem = `${prefix}/sem`
  const [a, b] = await sessions(c, 2) as [string, string]
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
  await eventually("a", () => aHolds, 5_000)
  const waiter = fork(acquireSemaphore(sem, b, 1))
  await eventually("b's key", async () => (await run(consul.get(`${sem}/0/${b}`))).value !== undefined, 5_000)
  await waiter.interrupt()
  assert.equal((await run(consul.get(`${sem}/0/${b}`))).value, undefined)
  assert.equal((await run(consul.get(`${sem}/0/${a}`))).value?.session, a)
})

/**
 * Every contender queues at once on one slot, holds it 30 ms and gives it back; returns
 * the most requests any one contender made.
 */
const mostRequestsPerContender = async (c: ConsulForTest, sem: string, contenders: number) => {
  const ids = await sessions(c, contenders)
  const requests = new Map<string, number>()
  const counting = (id: string) => {
    const count = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.suspend(() => {
        requests.set(id, (requests.get(id) ?? 0) + 1)
        return effect
      })
    const { consul } = c
    return Consul.of({
      ...consul,
      get: (key, options) => count(consul.get(key, options)),
      list: (p, options) => count(consul.list(p, options)),
      put: (key, value, options) => count(consul.put(key, value, options)),
      delete: (key, options) => count(consul.delete(key, options)),
      txn: (ops) => count(consul.txn(ops))
    })
  }
  let held = 0
  await c.run(
    Effect.forEach(ids, (id) =>
      Effect.scoped(Effect.gen(function*() {
        yield* acquireSemaphore(sem, id, 1, { value: id })
        held++
        yield* Effect.sleep("30 millis")
      })).pipe(Effect.provideService(Consul, counting(id))), { concurrency: "unbounded" })
  )
  assert.equal(held, contenders)
  return Math.max(...requests.values())
}

test("a waiter's requests do not grow with the number of waiting nodes", async (t) => {
  const c = await consulForTest(t)
  const few = await mostRequestsPerContender(c, `${c.prefix}/few`, 3)
  const many = await mostRequestsPerContender(c, `${c.prefix}/many`, 15)
  // Ticket, queue, read the predecessor, wait for it to hold and to go, mark holding,
  // release: about 9 whatever the queue. Waking at every handoff (the Go recipe's `.lock` watch,
  // or every waiter on one holder's key) costs 15 waiters 2-3 requests per handoff.
  assert.ok(many <= 12, `the busiest of 15 contenders made ${many} requests`)
  assert.ok(many <= few + 2, `the busiest of 3 made ${few} requests, of 15 ${many}`)
})
