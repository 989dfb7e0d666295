// What the controller's report loop reads when nodes write their status: only the
// keys of the app that changed, never every app's.
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import { Metrics } from "../../src/controller/metrics.ts"
import { reportLoop } from "../../src/controller/report/loop.ts"
import type { GitHubShape } from "../../src/github/github.ts"
import { type Keys, makeKeys } from "../../src/spec/keys.ts"
import { consulForTest } from "../consul/harness.ts"
import { eventually, sleep } from "../support/eventually.ts"

/** A node's status with one release in `phase`, as a reconciler writes it. */
const putStatus = (consul: Consul["Service"], keys: Keys, app: string, node: string, phase: string) =>
  consul.put(
    keys.status(app, node),
    JSON.stringify({
      node,
      updatedAt: new Date().toISOString(),
      releases: { ["a".repeat(40)]: { phase, attempt: 1, steps: {} } },
      current: null,
      deploy: null
    })
  )

test("a NodeStatus write refetches only its own app's keys", async (t) => {
  const { consul, prefix, fork, run } = await consulForTest(t)
  const keys = makeKeys(prefix)
  // Keys the loop is sent by every listing (with values or names only), and keys it
  // checks or fetches in transactions, by the group of keys they belong to.
  const listed = new Map<string, number>()
  const add = (p: string, n: number) => listed.set(p, (listed.get(p) ?? 0) + n)
  const groupOf = (key: string) => {
    const parsed = keys.parse(key)
    return "app" in parsed ? keys.app(parsed.app) : keys.nodes
  }
  const counting = Layer.succeed(Consul, {
    ...consul,
    list: (p, options) => Effect.tap(consul.list(p, options), (r) => Effect.sync(() => add(p, r.value.length))),
    listKeys: (p, options) => Effect.tap(consul.listKeys(p, options), (r) => Effect.sync(() => add(p, r.value.length))),
    txn: (ops) => Effect.tap(consul.txn(ops), () => Effect.sync(() => ops.forEach((op) => add(groupOf(op.key), 1))))
  })
  const status = (app: string, node: string, phase: string) => run(putStatus(consul, keys, app, node, phase))
  for (const app of ["quiet", "busy"]) {
    await run(consul.put(keys.config(app), JSON.stringify({ artifact: "file:///x/{sha}.tgz" })))
    await run(consul.put(keys.release(app, "a".repeat(40)), JSON.stringify({})))
    for (let n = 0; n < 10; n++) await status(app, `web-${n}`, "ready")
  }

  const loop = fork(
    reportLoop({ keys, github: undefined, publicUrl: undefined, metrics: undefined }).pipe(Effect.provide(counting))
  )
  t.after(() => loop.interrupt())
  await eventually("the loop to read the quiet app", () => (listed.get(keys.app("quiet")) ?? 0) > 0, 20_000)
  await sleep(1_000)
  listed.clear()

  for (let i = 0; i < 20; i++) await status("busy", `web-${i % 10}`, i % 2 === 0 ? "install" : "ready")
  await eventually("the loop to see the busy app change", () => (listed.get(keys.app("busy")) ?? 0) > 0, 10_000)
  await sleep(1_500)
  const elsewhere = [...listed].filter(([p]) => p !== keys.app("busy") && p !== keys.nodes)
  assert.deepEqual(elsewhere, [], "status writes of one app made the loop read other keys")
})

test("a status write in one app decodes and renders that app only, and the loop's watches read with ?stale", async (t) => {
  const { consul, prefix, fork, run } = await consulForTest(t)
  const keys = makeKeys(prefix)
  // The loop's reads, by prefix and whether they asked for ?stale.
  const reads: Array<{ prefix: string; stale: boolean }> = []
  const counting = Layer.succeed(Consul, {
    ...consul,
    list: (p, options) =>
      Effect.tap(
        consul.list(p, options),
        () => Effect.sync(() => reads.push({ prefix: p, stale: options?.stale === true }))
      ),
    listKeys: (p, options) =>
      Effect.tap(
        consul.listKeys(p, options),
        () => Effect.sync(() => reads.push({ prefix: p, stale: options?.stale === true }))
      )
  })
  // No app has a repo, so no GitHub call is ever made; the pass still renders each app.
  const github = { mode: "app" } as unknown as GitHubShape
  const metrics = new Metrics()
  const count = (name: string, app: string, loop?: string) =>
    metrics.get(name, loop === undefined ? { app } : { app, loop })
  const status = (app: string, node: string, phase: string) => run(putStatus(consul, keys, app, node, phase))
  for (const app of ["quiet", "busy"]) {
    await run(consul.put(keys.config(app), JSON.stringify({ artifact: "file:///x/{sha}.tgz" })))
    for (let n = 0; n < 5; n++) await status(app, `web-${n}`, "ready")
  }

  const loop = fork(reportLoop({ keys, github, publicUrl: undefined, metrics }).pipe(Effect.provide(counting)))
  t.after(() => loop.interrupt())
  await eventually(
    "the loop to render both apps",
    () => count("sacar_report_renders_total", "quiet") > 0 && count("sacar_report_renders_total", "busy") > 0,
    20_000
  )
  await sleep(500)
  const quietBefore = {
    decodes: count("sacar_report_decodes_total", "quiet"),
    renders: count("sacar_report_renders_total", "quiet"),
    kvPasses: count("sacar_report_passes_total", "quiet", "kv")
  }
  const busyRenders = count("sacar_report_renders_total", "busy")

  for (let i = 0; i < 10; i++) await status("busy", `web-${i % 5}`, i % 2 === 0 ? "install" : "ready")
  await eventually(
    "the loop to render the busy app again",
    () => count("sacar_report_renders_total", "busy") > busyRenders,
    10_000
  )
  await sleep(1_500)
  assert.deepEqual(
    {
      decodes: count("sacar_report_decodes_total", "quiet"),
      renders: count("sacar_report_renders_total", "quiet"),
      kvPasses: count("sacar_report_passes_total", "quiet", "kv")
    },
    quietBefore,
    "status writes in busy made the loop decode or render quiet"
  )
  assert.ok(count("sacar_report_decodes_total", "busy") > 1)

  const watched = reads.filter((r) => r.prefix === keys.nodes || r.prefix.startsWith(keys.root))
  assert.ok(watched.length > 0)
  assert.deepEqual(watched.filter((r) => !r.stale), [], "every watch of the report loop reads with ?stale")
})
