// watchPrefix / watchKey: Consul's blocking-query client rules, against startConsul()
// for behaviour and against a stub for the failure modes (errors, spinning, resets).

import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import assert from "node:assert/strict"
import { test } from "node:test"
import type { Indexed, KvEntry } from "../../src/consul/consul.ts"
import { Consul } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { initialWatchState, nextWatchStep, watchKey, watchPrefix } from "../../src/consul/watch.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { consulForTest } from "./harness.ts"
import { sendKv, startStub } from "./stub.ts"

test("the index rules: emit first and on moves, reset when backwards, keep >= 1, limit quick repeats", () => {
  // Reads far apart in time, so the token bucket is always full here.
  let clock = 0
  const later = () => (clock += 60_000)
  let s = nextWatchStep(initialWatchState, 0, false, later())
  assert.equal(s.emit, true)
  assert.equal(s.state.requestIndex, 1) // never 0 once there is an answer
  s = nextWatchStep(s.state, 10, false, later())
  assert.equal(s.emit, true)
  assert.equal(s.state.requestIndex, 10)
  s = nextWatchStep(s.state, 10, true, later()) // a blocking read that timed out
  assert.equal(s.emit, false)
  assert.equal(s.delayMs, 0)
  s = nextWatchStep(s.state, 4, false, later()) // backwards: news, and start over from 0
  assert.equal(s.emit, true)
  assert.equal(s.state.requestIndex, 0)
  s = nextWatchStep(s.state, 4, false, later()) // the reset read: same as emitted, no news
  assert.equal(s.emit, false)
  assert.equal(s.state.requestIndex, 4)
  // Quick answers without news: a burst of two, then growing pauses up to 15 s.
  let q = nextWatchStep(nextWatchStep(initialWatchState, 3, false, later()).state, 3, false, later())
  assert.equal(q.delayMs, 0)
  q = nextWatchStep(q.state, 3, false, later())
  assert.equal(q.delayMs, 0)
  const delays: Array<number> = []
  for (let i = 0; i < 10; i++) {
    q = nextWatchStep(q.state, 3, false, later())
    delays.push(q.delayMs)
  }
  assert.ok(delays[0]! >= 500 && delays[0]! <= 1_000)
  assert.ok(delays.every((d) => d > 0 && d <= 15_000))
  assert.ok(delays[9]! >= 7_500)
  // News resets the limiter.
  assert.equal(nextWatchStep(q.state, 4, false, later()).delayMs, 0)
})

test("the token bucket: a burst of two changed answers at once, then one per interval", () => {
  let s = nextWatchStep(initialWatchState, 5, false, 1_000, 1_000)
  assert.equal(s.delayMs, 0) // the first answer
  s = nextWatchStep(s.state, 6, false, 1_000, 1_000)
  assert.equal(s.emit, true)
  assert.equal(s.delayMs, 0) // the second: still within the burst
  s = nextWatchStep(s.state, 7, false, 1_000, 1_000)
  assert.equal(s.emit, true)
  assert.equal(s.delayMs, 1_000) // the bucket is empty: wait for one token
  s = nextWatchStep(s.state, 8, false, 2_000, 1_000)
  assert.equal(s.delayMs, 1_000) // still churning: one read per interval
  s = nextWatchStep(s.state, 9, false, 3_000, 1_000)
  assert.equal(s.delayMs, 1_000)
  // A quiet spell refills the bucket: the next change is read at once again.
  s = nextWatchStep(s.state, 10, false, 60_000, 1_000)
  assert.equal(s.delayMs, 0)
  assert.equal(nextWatchStep(s.state, 11, false, 60_000, 1_000).delayMs, 0)
})

const collect = <A>(stream: Stream.Stream<A, never, Consul>, into: Array<A>, layer: Layer.Layer<Consul>) =>
  Effect.runFork(stream.pipe(Stream.runForEach((a) => Effect.sync(() => into.push(a))), Effect.provide(layer)))

test("watchPrefix emits the current entries, then each change under the prefix", async (t) => {
  const { addr, consul, prefix, run } = await consulForTest(t)
  const layer = consulLayer({ address: addr, tls: { verify: true } })
  await run(consul.put(`${prefix}/app/a`, "1"))
  const seen: Array<Indexed<ReadonlyArray<KvEntry>>> = []
  const fiber = collect(watchPrefix(`${prefix}/app/`, { wait: "10s" }), seen, layer)
  t.after(() => Effect.runPromise(Fiber.interrupt(fiber)))
  await eventually("the first emission", () => seen.length === 1, 5_000)
  assert.deepEqual(seen[0]!.value.map((e) => [e.key, e.value]), [[`${prefix}/app/a`, "1"]])

  await run(consul.put(`${prefix}/app/b`, "2"))
  await eventually("b to appear", () => seen.at(-1)!.value.length === 2, 5_000)
  await run(consul.put(`${prefix}/app/a`, "changed"))
  await eventually("a to change", () => seen.at(-1)!.value[0]?.value === "changed", 5_000)
  await run(consul.delete(`${prefix}/app/a`))
  await eventually("a to go", () => seen.at(-1)!.value.length === 1, 5_000)
  assert.deepEqual(seen.at(-1)!.value.map((e) => e.key), [`${prefix}/app/b`])
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.index !== seen[i - 1]!.index)

  // Writes elsewhere do not change what the watch reports (whether or not Consul wakes it).
  const before = seen.length
  await run(consul.put(`${prefix}/other/x`, "y"))
  await run(consul.put(`${prefix}/apple`, "not under app/"))
  await sleep(500)
  for (const emitted of seen.slice(before)) {
    assert.deepEqual(emitted.value.map((e) => e.key), [`${prefix}/app/b`])
  }
})

test("watchKey emits a missing key once, then its value, then its deletion", async (t) => {
  const { addr, consul, prefix, run } = await consulForTest(t)
  const layer = consulLayer({ address: addr, tls: { verify: true } })
  const key = `${prefix}/one`
  const seen: Array<Indexed<KvEntry | undefined>> = []
  const fiber = collect(watchKey(key, { wait: "10s" }), seen, layer)
  t.after(() => Effect.runPromise(Fiber.interrupt(fiber)))
  await eventually("the first emission", () => seen.length === 1, 5_000)
  assert.equal(seen[0]!.value, undefined)
  // A missing key's index is the whole table's: unrelated writes move it, but
  // "still missing" is not news.
  await run(consul.put(`${prefix}/unrelated`, "1"))
  await run(consul.put(`${prefix}/unrelated`, "2"))
  await sleep(300)
  assert.equal(seen.length, 1)
  await run(consul.put(key, "v"))
  await eventually("the value", () => seen.at(-1)!.value?.value === "v", 5_000)
  await run(consul.delete(key))
  await eventually("the deletion", () => seen.at(-1)!.value === undefined, 5_000)
})

test("an empty prefix woken by writes elsewhere is emitted once, not at every wake-up", async (t) => {
  // What Consul does with an empty prefix: it reports the KV table's index, so every
  // write nearby (another node's status) answers the blocking read with a new index.
  let index = 10
  const stub = await startStub(t, (_req, res) => setTimeout(() => sendKv(res, index += 1, []), 20))
  const seen: Array<Indexed<ReadonlyArray<KvEntry>>> = []
  const fiber = collect(
    watchPrefix("p/", { wait: "2s", minIntervalMs: 50 }),
    seen,
    consulLayer({ address: stub.addr, tls: { verify: true } })
  )
  t.after(() => Effect.runPromise(Fiber.interrupt(fiber)))
  await eventually("six answers", () => stub.requests.length >= 6, 10_000)
  assert.equal(seen.length, 1, `${seen.length} emissions of the same empty prefix`)
  assert.deepEqual(seen[0]!.value, [])
})

test("a watch does not spin against a server that answers 500, and recovers when it is back", async (t) => {
  let healthy = false
  const stub = await startStub(t, (_req, res, url) => {
    if (!healthy) {
      res.writeHead(500, { "Content-Type": "text/plain" })
      res.end("No cluster leader")
      return
    }
    const index = Number(url.searchParams.get("index") ?? "0")
    if (index >= 42) return setTimeout(() => sendKv(res, 42, [{ key: "p/k", value: "v" }]), 2_000)
    sendKv(res, 42, [{ key: "p/k", value: "v" }])
  })
  const seen: Array<Indexed<ReadonlyArray<KvEntry>>> = []
  const fiber = collect(
    watchPrefix("p/", { wait: "2s" }),
    seen,
    consulLayer({ address: stub.addr, tls: { verify: true } })
  )
  t.after(() => Effect.runPromise(Fiber.interrupt(fiber)))
  await sleep(3_000)
  assert.equal(seen.length, 0)
  assert.ok(stub.requests.length >= 2, `only ${stub.requests.length} requests`)
  assert.ok(stub.requests.length <= 8, `${stub.requests.length} requests in 3 s`)
  healthy = true
  await eventually("recovery", () => seen.length === 1, 20_000)
  assert.equal(seen[0]!.index, 42)
  assert.equal(seen[0]!.value[0]?.value, "v")
})

test("a watch does not spin against a server that drops connections", async (t) => {
  const { createServer } = await import("node:net")
  let connections = 0
  const server = createServer((socket) => {
    connections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const addr = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const seen: Array<unknown> = []
  const fiber = collect(watchPrefix("p/", { wait: "2s" }), seen, consulLayer({ address: addr, tls: { verify: true } }))
  await sleep(3_000)
  await Effect.runPromise(Fiber.interrupt(fiber))
  assert.equal(seen.length, 0)
  assert.ok(connections >= 2 && connections <= 8, `${connections} connections in 3 s`)
})

test("a watch does not spin against a server that answers at once with the same index", async (t) => {
  const stub = await startStub(t, (_req, res) => sendKv(res, 7, [{ key: "p/k", value: "v" }]))
  const seen: Array<Indexed<ReadonlyArray<KvEntry>>> = []
  const fiber = collect(
    watchPrefix("p/", { wait: "5m" }),
    seen,
    consulLayer({ address: stub.addr, tls: { verify: true } })
  )
  await sleep(3_000)
  await Effect.runPromise(Fiber.interrupt(fiber))
  assert.equal(seen.length, 1)
  // first read, the burst of 2, then pauses of 0.5-1 s, 1-2 s, ...
  assert.ok(stub.requests.length <= 7, `${stub.requests.length} requests in 3 s`)
  assert.equal(stub.requests[1]!.url.searchParams.get("index"), "7")
})

test("an index going backwards resets the watch to 0 and emits the new state", async (t) => {
  const answers = [
    { index: 100, value: "before" },
    { index: 30, value: "restored" }, // e.g. a snapshot restore
    { index: 30, value: "restored" }, // the index=0 read after the reset
    { index: 31, value: "after" }
  ]
  let served = 0
  const stub = await startStub(t, (_req, res) => {
    const answer = answers[Math.min(served++, answers.length - 1)]!
    if (served > answers.length)
      return setTimeout(() => sendKv(res, answer.index, [{ key: "p/k", value: answer.value }]), 1_000)
    sendKv(res, answer.index, [{ key: "p/k", value: answer.value }])
  })
  const seen: Array<Indexed<ReadonlyArray<KvEntry>>> = []
  const fiber = collect(
    watchPrefix("p/", { wait: "1s" }),
    seen,
    consulLayer({ address: stub.addr, tls: { verify: true } })
  )
  t.after(() => Effect.runPromise(Fiber.interrupt(fiber)))
  await eventually("three emissions", () => seen.length === 3, 5_000)
  assert.deepEqual(seen.map((s) => [s.index, s.value[0]?.value]), [[100, "before"], [30, "restored"], [31, "after"]])
  const sent = stub.requests.map((r) => r.url.searchParams.get("index"))
  assert.deepEqual(sent.slice(0, 4), [null, "100", null, "30"])
})

test("interrupting a watch aborts its blocking read", async (t) => {
  let closed = 0
  const stub = await startStub(t, (req, res, url) => {
    if (url.searchParams.get("index") === null) return sendKv(res, 5, [{ key: "p/k", value: "v" }])
    req.socket.on("close", () => closed++)
  })
  const seen: Array<unknown> = []
  const fiber = collect(
    watchPrefix("p/", { wait: "5m" }),
    seen,
    consulLayer({ address: stub.addr, tls: { verify: true } })
  )
  await eventually("the blocking read", () => stub.requests.length === 2, 3_000)
  await Effect.runPromise(Fiber.interrupt(fiber))
  await eventually("the socket to close", () => closed === 1, 2_000)
})

test("a watch whose answers keep changing degrades into polling at a bounded rate (token bucket, burst 2)", async (t) => {
  // Every answer comes back at once with a new index: a prefix that churns.
  let index = 10
  const stub = await startStub(t, (_req, res) => sendKv(res, ++index, [{ key: "p/k", value: String(index) }]))
  const seen: Array<Indexed<ReadonlyArray<KvEntry>>> = []
  const fiber = collect(
    watchPrefix("p/", { wait: "5m" }),
    seen,
    consulLayer({ address: stub.addr, tls: { verify: true } })
  )
  await sleep(3_000)
  await Effect.runPromise(Fiber.interrupt(fiber))
  // The first read, a burst of two, then about one a second: never a spin.
  assert.ok(stub.requests.length >= 4, `only ${stub.requests.length} requests in 3 s`)
  assert.ok(stub.requests.length <= 7, `${stub.requests.length} requests in 3 s`)
  // Each answer was news and was emitted: the limit paces the reads, it drops nothing.
  // (the last request may still have been in flight when the watch was stopped).
  assert.ok(seen.length >= stub.requests.length - 1, `${seen.length} emitted of ${stub.requests.length} answers`)
})
