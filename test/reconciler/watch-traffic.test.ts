// What a node's watches cost Consul while other nodes work: a reconciler idle in an
// app it does not serve must not be woken by that app's status writes; and how many
// blocking queries (connections to its agent) an idle node holds. In-process
// reconciler, every read it makes counted at the Consul service.

import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import assert from "node:assert/strict"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { ArtifactStore } from "../../src/artifacts/store.ts"
import { Consul } from "../../src/consul/consul.ts"
import { Python } from "../../src/python/python.ts"
import { runReconciler } from "../../src/reconciler/loop.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { consulForTest } from "../consul/harness.ts"
import { eventually, sleep } from "../support/eventually.ts"

const HEX = "0123456789abcdef"
const shaOf = (n: number) => Array.from({ length: 40 }, (_, i) => HEX[(n * 7 + i) % 16]).join("")

test("a node idle in an app it does not serve sees no wake-ups from other nodes' status writes", async (t) => {
  const { consul, prefix, fork, run } = await consulForTest(t)
  const keys = makeKeys(prefix)
  const root = await mkdtemp(join(tmpdir(), "sacar-watch-traffic-"))
  t.after(() => rm(root, { recursive: true, force: true }))

  // Every read the reconciler makes (get, list, keys), counted when its answer arrives.
  let reads = 0
  const answered = <A, E>(effect: Effect.Effect<A, E>) => Effect.tap(effect, () => Effect.sync(() => reads++))
  const counting = Layer.succeed(Consul, {
    ...consul,
    get: (key, options) => answered(consul.get(key, options)),
    list: (p, options) => answered(consul.list(p, options)),
    keys: (p, separator) => answered(consul.keys(p, separator))
  })

  await run(consul.put(keys.config("busy"), JSON.stringify({ artifact: "file:///x/{sha}.tgz", nodes: ["busy-*"] })))
  await run(consul.put(keys.release("busy", shaOf(1)), JSON.stringify({})))

  const reconciler = fork(
    runReconciler({
      settings: { node: "idle-1", consulNode: "idle-1", root, concurrency: 1, python: "3", prefix },
      discoverEveryMs: 60 * 60_000
    }).pipe(
      Effect.provide(Layer.mergeAll(counting, ArtifactStore.layer, Python.layer))
    )
  )
  t.after(() => reconciler.interrupt())
  await eventually(
    "the node to register",
    async () => (await run(consul.get(keys.node("idle-1")))).value !== undefined,
    20_000
  )
  // Let the start-up reads (discovery, the config watch's first answer) settle.
  let settled = -1
  await eventually("the node's reads to settle", async () => {
    const now = reads
    const quiet = now === settled
    settled = now
    await sleep(300)
    return quiet
  }, 20_000)

  const before = reads
  for (let i = 0; i < 40; i++) {
    const node = `busy-${i % 8}`
    await run(consul.put(
      keys.status("busy", node),
      JSON.stringify({
        node,
        updatedAt: new Date().toISOString(),
        releases: { [shaOf(1)]: { phase: i < 20 ? "install" : "ready", attempt: 1, steps: {} } },
        current: null,
        deploy: null
      })
    ))
  }
  await sleep(1_500)
  assert.equal(reads - before, 0, `the idle node made ${reads - before} reads while other nodes wrote 40 statuses`)

  // The node still sees what concerns it at once: the app's config naming it.
  await run(consul.put(keys.config("busy"), JSON.stringify({ artifact: "file:///x/{sha}.tgz", nodes: ["*"] })))
  await eventually(
    "the node to take the app up and write its status",
    async () => (await run(consul.get(keys.status("busy", "idle-1")))).value !== undefined,
    10_000
  )
})

test("an idle node holds three blocking queries per app it serves (config, releases/, deploy) and its registration: never the lock", async (t) => {
  const { consul, prefix, fork, run } = await consulForTest(t)
  const keys = makeKeys(prefix)
  const root = await mkdtemp(join(tmpdir(), "sacar-watch-count-"))
  t.after(() => rm(root, { recursive: true, force: true }))

  // Blocking reads (an index given) counted on the client side, by what they wait on,
  // while they are held: the same count whether Consul is dev-consul or the real one.
  const held = new Map<string, number>()
  const everBlockedOn = new Set<string>()
  const blocking = <A, E>(what: string, index: number | undefined, effect: Effect.Effect<A, E>) =>
    index === undefined || index === 0 ? effect : Effect.suspend(() => {
      held.set(what, (held.get(what) ?? 0) + 1)
      everBlockedOn.add(what)
      return Effect.ensuring(effect, Effect.sync(() => held.set(what, held.get(what)! - 1)))
    })
  const counting = Layer.succeed(Consul, {
    ...consul,
    get: (key, options) => blocking(key, options?.index, consul.get(key, options)),
    list: (p, options) => blocking(p, options?.index, consul.list(p, options))
  })
  const heldNow = () => [...held].filter(([, n]) => n > 0).map(([what, n]) => n === 1 ? what : `${what} x${n}`).sort()

  for (const app of ["shop", "blog"]) {
    await run(consul.put(keys.config(app), JSON.stringify({ artifact: "file:///x/{sha}.tgz", nodes: ["web-1"] })))
  }
  await run(consul.put(keys.config("other"), JSON.stringify({ artifact: "file:///x/{sha}.tgz", nodes: ["db-*"] })))

  const reconciler = fork(
    runReconciler({
      settings: { node: "web-1", consulNode: "web-1", root, concurrency: 1, python: "3", prefix },
      discoverEveryMs: 60 * 60_000
    }).pipe(Effect.provide(Layer.mergeAll(counting, ArtifactStore.layer, Python.layer)))
  )
  t.after(() => reconciler.interrupt())

  const expected = [
    keys.config("blog"),
    keys.deploy("blog"),
    keys.releases("blog"),
    keys.config("other"),
    keys.config("shop"),
    keys.deploy("shop"),
    keys.releases("shop"),
    keys.node("web-1")
  ].sort()
  // Both served apps taken up (their status written), then every watch back to its wait.
  await eventually(
    "both apps to be served",
    async () =>
      (await run(consul.get(keys.status("shop", "web-1")))).value !== undefined &&
      (await run(consul.get(keys.status("blog", "web-1")))).value !== undefined,
    20_000
  )
  await eventually(
    "the node's watches to hold their blocking reads",
    async () => {
      if (JSON.stringify(heldNow()) !== JSON.stringify(expected)) return false
      await sleep(500)
      return JSON.stringify(heldNow()) === JSON.stringify(expected)
    },
    20_000,
    () => JSON.stringify(heldNow())
  )
  // 2 served apps x 3, the config of the app it does not serve, the registration.
  assert.deepEqual(heldNow(), expected)
  assert.equal(everBlockedOn.has(keys.lock("shop")) || everBlockedOn.has(keys.lock("blog")), false)
})
