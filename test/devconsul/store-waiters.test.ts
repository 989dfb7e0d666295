// The store's waiters by interest: a write wakes the blocking queries it could move
// and calls nothing else, however many other queries are held.

import assert from "node:assert/strict"
import { test } from "node:test"
import { Store } from "../../src/devconsul/store.ts"

const put = (store: Store, key: string, value: string) =>
  store.writeKv((tx) => {
    tx.set(key, Buffer.from(value), 0n)
    return { commit: true, result: undefined }
  })

test("a write wakes the waiters on its key, its prefixes and every KV write, and no others", () => {
  const store = new Store()
  const woken: string[] = []
  const wait = (name: string, interest: Parameters<Store["waitFor"]>[0]) =>
    store.waitFor(interest, () => woken.push(name))
  wait("key a/x", { kind: "key", key: "a/x" })
  wait("key a/y", { kind: "key", key: "a/y" })
  wait("prefix a/", { kind: "prefix", prefix: "a/" })
  wait("prefix b/", { kind: "prefix", prefix: "b/" })
  wait("any", { kind: "prefix", prefix: "" })
  wait("sessions", { kind: "sessions" })
  assert.equal(store.listenerCount, 6)

  put(store, "a/x", "1")
  assert.deepEqual(woken.sort(), ["any", "key a/x", "prefix a/"])
  woken.length = 0
  // The waiters stay until they unsubscribe (a blocking query does when woken).
  put(store, "b/z", "1")
  assert.deepEqual(woken.sort(), ["any", "prefix b/"])
})

test("an unsubscribed waiter is not called and is not counted", () => {
  const store = new Store()
  let calls = 0
  const stop = store.waitFor({ kind: "key", key: "k" }, () => calls++)
  stop()
  stop()
  put(store, "k", "v")
  assert.equal(calls, 0)
  assert.equal(store.listenerCount, 0)
})
