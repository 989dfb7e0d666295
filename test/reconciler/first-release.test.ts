// A brand-new app's first ReleaseSpec, seen at once after a storm of other nodes'
// status writes. Until the first release, the app's `releases/` prefix is empty, and
// Consul answers an empty prefix with the whole KV table's index: every status write
// under the app wakes the node's `releases/` watch with "still empty". The watch paces
// that churn (src/consul/watch.ts), but once the storm is over a single change must be
// seen at once, as after any quiet spell. In-process reconciler, its `releases/` reads
// counted at the Consul service.

import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import assert from "node:assert/strict"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import type { TestContext } from "node:test"
import { ArtifactStore } from "../../src/artifacts/store.ts"
import { Consul } from "../../src/consul/consul.ts"
import { Python } from "../../src/python/python.ts"
import { runReconciler } from "../../src/reconciler/loop.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { consulForTest } from "../consul/harness.ts"
import { eventually, sleep } from "../support/eventually.ts"

const SHA = "0123456789abcdef0123456789abcdef01234567"
/** Consul's advice, and the watch's bucket: a burst of 2, then one read a second. */
const READS_PER_SECOND = 1
/** A storm is over for the watch once it has had two refills' time (a read that was paced may still answer "still empty" once). */
const QUIET_MS = 2_200

/** A reconciler serving the brand-new app "fresh", its `releases/` reads timed. */
const startNode = async (t: TestContext) => {
  const { consul, prefix, fork, run } = await consulForTest(t)
  const keys = makeKeys(prefix)
  const root = await mkdtemp(join(tmpdir(), "sacar-first-release-"))
  t.after(() => rm(root, { recursive: true, force: true }))

  // The answers to the node's reads of the app's `releases/` prefix, with when they came.
  const releaseReads: number[] = []
  const counting = Layer.succeed(Consul, {
    ...consul,
    list: (p, options) =>
      Effect.tap(
        consul.list(p, options),
        () => Effect.sync(() => p === keys.releases("fresh") && releaseReads.push(performance.now()))
      )
  })

  // An artifact that is not there: the node takes the release up and fails its
  // download at once; either way its status shows the release.
  await run(
    consul.put(keys.config("fresh"), JSON.stringify({ artifact: `file://${root}/none/{sha}.tgz`, nodes: ["*"] }))
  )
  const reconciler = fork(
    runReconciler({
      settings: { node: "n-1", consulNode: "n-1", root: join(root, "n-1"), concurrency: 1, python: "3", prefix },
      discoverEveryMs: 60 * 60_000
    }).pipe(Effect.provide(Layer.mergeAll(counting, ArtifactStore.layer, Python.layer)))
  )
  t.after(() => reconciler.interrupt())
  await eventually(
    "the node to serve the app and write its status",
    async () => (await run(consul.get(keys.status("fresh", "n-1")))).value !== undefined,
    20_000
  )
  /** Another node's status write under the app. */
  const peerWrites = (i: number) =>
    run(consul.put(
      keys.status("fresh", `peer-${i % 10}`),
      JSON.stringify({
        node: `peer-${i % 10}`,
        updatedAt: new Date().toISOString(),
        releases: {},
        current: null,
        deploy: null,
        n: i
      })
    ))
  /** Writes the first ReleaseSpec; resolves with the ms until the node's status showed it. */
  const firstRelease = async () => {
    const written = performance.now()
    await run(consul.put(keys.release("fresh", SHA), JSON.stringify({})))
    await eventually(
      "the node's status to show the release",
      async () => {
        const status = (await run(consul.get(keys.status("fresh", "n-1")))).value
        return status !== undefined &&
          (JSON.parse(status.value ?? "{}") as { releases: Record<string, unknown> }).releases[SHA] !== undefined
      },
      20_000,
      undefined,
      10
    )
    return performance.now() - written
  }
  return { releaseReads, peerWrites, firstRelease }
}

test("a node sees a brand-new app's first ReleaseSpec at once after a storm of other nodes' status writes", async (t) => {
  const { releaseReads, peerWrites, firstRelease } = await startNode(t)

  // The other nodes take the app up and report: 40 status writes under the app in about a second.
  const stormStart = performance.now()
  for (let i = 0; i < 40; i++) {
    await peerWrites(i)
    await sleep(25)
  }
  const stormEnd = performance.now()
  const stormReads = releaseReads.filter((at) => at >= stormStart && at <= stormEnd + 100).length
  const allowed = 2 + Math.ceil(((stormEnd - stormStart) / 1000) * READS_PER_SECOND) + 1
  assert.ok(stormReads <= allowed, `${stormReads} reads of releases/ during a ${stormEnd - stormStart} ms storm`)

  await sleep(QUIET_MS)
  const tookMs = await firstRelease()
  assert.ok(tookMs < 500, `the first ReleaseSpec reached the node's status after ${tookMs.toFixed(0)} ms`)
})

test("during a storm of other nodes' status writes, a brand-new app's first ReleaseSpec is seen within the watch's interval", async (t) => {
  const { releaseReads, peerWrites, firstRelease } = await startNode(t)
  let storming = true
  let i = 0
  const stormStart = performance.now()
  const storm = (async () => {
    while (storming) {
      await peerWrites(i++)
      await sleep(25)
    }
  })()
  t.after(async () => {
    storming = false
    await storm
  })
  await sleep(2_000)
  const tookMs = await firstRelease()
  storming = false
  await storm
  const stormEnd = performance.now()
  // One read a second after the burst: the spec is read at the next one, and the
  // reaction that follows takes a few tens of ms.
  assert.ok(tookMs < 1_000 / READS_PER_SECOND + 500, `seen ${tookMs.toFixed(0)} ms after it was written`)
  const stormReads = releaseReads.filter((at) => at >= stormStart && at <= stormEnd).length
  const allowed = 2 + Math.ceil(((stormEnd - stormStart) / 1000) * READS_PER_SECOND) + 1
  assert.ok(
    stormReads <= allowed,
    `${stormReads} reads of releases/ during a ${(stormEnd - stormStart).toFixed(0)} ms storm`
  )
})
