// What a node's watches cost Consul while other nodes work: a reconciler idle in an
// app it does not serve must not be woken by that app's status writes. In-process
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
