// Taking the node's registration key on TestClock, against a stand-in Consul whose key
// is held by whoever the test says: the pacing of acquireRetry without waiting it out.

import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { acquireForNode, keepRegistered } from "../../src/reconciler/membership.ts"
import { parseDuration } from "../../src/spec/duration.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { consulStandIn } from "../support/consul-stand-in.ts"

interface Holder {
  session: string | undefined
  readonly name: string
  /** Puts refused although the key is free (the last holder's lock-delay). */
  lockDelayPuts?: number
}

/** A key that `holder` holds (its session named `holder.name`); a put acquires only when free. */
const keyConsul = (holder: Holder, tries: Array<number>, destroyed: Array<string>) => {
  return consulStandIn("acquireForNode", {
    get: (key) =>
      Effect.succeed({
        index: 1,
        value: {
          key,
          value: "",
          flags: "0",
          createIndex: 1,
          modifyIndex: 1,
          lockIndex: 1,
          ...(holder.session === undefined ? {} : { session: holder.session })
        }
      }),
    put: (_key, _value, options) =>
      Clock.currentTimeMillis.pipe(
        Effect.tap((now) => Effect.sync(() => tries.push(now))),
        Effect.map(() => {
          if (holder.session === undefined && (holder.lockDelayPuts ?? 0) > 0) {
            holder.lockDelayPuts! -= 1
            return false
          }
          return holder.session === undefined || holder.session === options?.acquire
        })
      ),
    destroySession: (id) =>
      Effect.sync(() => {
        destroyed.push(id)
        if (holder.session === id) holder.session = undefined
      }),
    sessionInfo: (id) =>
      Effect.succeed(
        id === holder.session
          ? { id, name: holder.name, node: "n", ttl: "15s", behavior: "delete", lockDelayNs: 0 }
          : undefined
      )
  })
}

const OWN_NAME = "sacar reconciler on web-1"

test("a key held by another live session is tried every 5 s, and taken once it is let go", async () => {
  const holder: Holder = { session: "theirs", name: "sacar reconciler on web-1 elsewhere" }
  const tries: Array<number> = []
  const destroyed: Array<string> = []
  await Effect.runPromise(
    Effect.gen(function*() {
      const taking = yield* Effect.forkChild(acquireForNode("k", "v", "mine", OWN_NAME))
      yield* TestClock.adjust("12 seconds")
      assert.deepEqual(tries, [0, 5_000, 10_000])
      assert.equal(taking.pollUnsafe(), undefined)
      holder.session = undefined
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(taking)
      assert.deepEqual(tries, [0, 5_000, 10_000, 15_000])
      assert.deepEqual(destroyed, [], "another process's session is never destroyed")
    }).pipe(Effect.provide(Layer.merge(keyConsul(holder, tries, destroyed), TestClock.layer())))
  )
})

test("a key held by a dead predecessor of this node is freed and taken at once", async () => {
  const holder: Holder = { session: "earlier-run", name: OWN_NAME }
  const tries: Array<number> = []
  const destroyed: Array<string> = []
  await Effect.runPromise(
    Effect.gen(function*() {
      yield* acquireForNode("k", "v", "mine", OWN_NAME)
      assert.deepEqual(destroyed, ["earlier-run"])
      assert.deepEqual(tries, [0, 0])
    }).pipe(Effect.provide(Layer.merge(keyConsul(holder, tries, destroyed), TestClock.layer())))
  )
})

test("a free key refused for its lock-delay is tried again every second", async () => {
  const holder: Holder = { session: undefined, name: "", lockDelayPuts: 2 }
  const tries: Array<number> = []
  await Effect.runPromise(
    Effect.gen(function*() {
      const taking = yield* Effect.forkChild(acquireForNode("k", "v", "mine", OWN_NAME))
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(taking)
      assert.deepEqual(tries, [0, 1_000, 2_000])
    }).pipe(Effect.provide(Layer.merge(keyConsul(holder, tries, []), TestClock.layer())))
  )
})

test("a registered node that keeps its session reads its registration once per blocking wait, not every half TTL", async () => {
  let session: string | undefined
  const blockingReads: Array<number> = []
  const consul = consulStandIn("keepRegistered", {
    createSession: () => Effect.succeed("s1"),
    renewSession: () => Effect.succeed("15s"),
    destroySession: () => Effect.void,
    put: (_key, _value, options) =>
      Effect.sync(() => {
        session = options?.acquire
        return true
      }),
    // As Consul: a blocking read of a key that does not change is held for its wait.
    get: (key, options) =>
      Effect.gen(function*() {
        if ((options?.index ?? 0) > 0) {
          blockingReads.push(yield* Clock.currentTimeMillis)
          yield* Effect.sleep(parseDuration(options?.wait ?? "5m") ?? 300_000)
        }
        return {
          index: 7,
          value: { key, value: "", flags: "0", createIndex: 7, modifyIndex: 7, lockIndex: 1, session }
        }
      })
  })
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      yield* keepRegistered({ keys: makeKeys("sacar"), node: "web-1", root: "/srv", pythons: [] })
      // Ten minutes of an idle node whose session renews fine.
      for (let i = 0; i < 600; i++) yield* TestClock.adjust("1 second")
    })).pipe(Effect.provide(Layer.merge(consul, TestClock.layer())))
  )
  assert.equal(session, "s1")
  // Loss is the session's to notice (renewed every 7.5 s) or the key's change (at once):
  // re-reading the registration every 7.5 s (80 reads in 10 minutes) confirmed nothing more.
  assert.ok(blockingReads.length <= 3, `blocking reads of the registration in 10 minutes: ${blockingReads.length}`)
})
