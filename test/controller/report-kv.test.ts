// The leader's KV duties, with no GitHub configured (the demo's setup): leader
// election, auto-deploy (held by a lock or a pin) and ReleaseSpec retention.
import * as Schema from "effect/Schema"
import assert from "node:assert/strict"
import { test } from "node:test"
import { decideAutoDeploy } from "../../src/controller/report/autodeploy.ts"
import { DEFAULT_PRUNING } from "../../src/controller/report/pruning.ts"
import { releasesToRemove } from "../../src/controller/report/retention.ts"
import type { AppSnapshot } from "../../src/controller/report/snapshot.ts"
import { AppConfig } from "../../src/spec/documents.ts"
import type { NodeStatus } from "../../src/spec/documents.ts"
import { randomPrefix, startConsul } from "../support/consul.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { Kv } from "../support/kv.ts"
import { startReporter } from "../support/reporter.ts"
import { prepareOn, registerNode } from "../support/simulated-nodes.ts"
import { getJson, listPrefix, putKv, randomSha } from "./harness.ts"

const sha = (n: number) => n.toString(16).padStart(40, "0")

const snapshotOf = (options: {
  releases: number[]
  ready: Record<string, number[]>
  keep?: number
  autoDeploy?: boolean
  repo?: string
  deploy?: { sha: string; index: number }
  current?: Record<string, string>
  previous?: Record<string, string>
  lock?: boolean
  pin?: boolean
  branches?: Record<number, string>
}): { app: AppSnapshot; nodes: Set<string> } => {
  const config = Schema.decodeUnknownSync(AppConfig)({
    artifact: "file:///x/{sha}.tgz",
    keepReleases: options.keep ?? 2,
    autoDeploy: options.autoDeploy ?? false,
    ...(options.repo ? { repo: options.repo } : {})
  })
  const statuses = new Map<string, NodeStatus>()
  for (const [node, readyOnes] of Object.entries(options.ready)) {
    statuses.set(node, {
      node,
      updatedAt: "2026-11-27T10:00:00Z",
      releases: Object.fromEntries(
        options.releases.map((
          r
        ) => [sha(r), { phase: readyOnes.includes(r) ? "ready" : "install", attempt: 1, steps: {} }])
      ),
      current: options.current?.[node] ?? null,
      previous: options.previous?.[node] ?? null,
      deploy: null
    })
  }
  return {
    nodes: new Set(Object.keys(options.ready)),
    app: {
      app: "shop",
      config,
      releases: new Map(options.releases.map((r) => [sha(r), {
        doc: options.branches?.[r] ? { ref: `refs/heads/${options.branches[r]}` } : {},
        createIndex: r * 10,
        modifyIndex: r * 10
      }])),
      deploy: options.deploy
        ? {
          doc: { sha: options.deploy.sha },
          createIndex: 1,
          modifyIndex: options.deploy.index,
          generation: options.deploy.index
        }
        : undefined,
      statuses,
      lock: options.lock ? { by: "alice", reason: "freeze", at: "2026-11-27T09:00:00Z" } : undefined,
      pin: options.pin ? { sha: sha(1), by: "bob", reason: "rollback", at: "2026-11-27T09:00:00Z" } : undefined,
      github: new Map(),
      predeploy: new Map()
    }
  }
}

test("retention keeps the newest keepReleases ready releases, the deploy target, current and previous, and anything not ready", () => {
  // Releases 1..10; 4 and 7 failed on web-2, 10 is still preparing.
  const readyEverywhere = [1, 2, 3, 5, 6, 8, 9]
  const { app, nodes } = snapshotOf({
    releases: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    ready: { "web-1": [...readyEverywhere, 4, 7], "web-2": readyEverywhere },
    keep: 2,
    deploy: { sha: sha(5), index: 500 },
    current: { "web-1": sha(5), "web-2": sha(5) },
    previous: { "web-1": sha(3), "web-2": sha(2) }
  })
  // Ready, newest first: 9, 8 kept; 6 and 1 removed; 5 (target, current), 3 and 2 (previous) kept.
  assert.deepEqual([...releasesToRemove(app, nodes)].sort(), [sha(1), sha(6)].sort())
})

test("retention keeps the pinned release (pinned at sha 1, beyond keepReleases)", () => {
  const { app, nodes } = snapshotOf({ releases: [1, 2, 3, 4], ready: { "web-1": [1, 2, 3, 4] }, keep: 2, pin: true })
  assert.deepEqual([...releasesToRemove(app, nodes)], [sha(2)])
})

test("retention removes nothing when no node is expected (nothing ever became ready)", () => {
  const { app } = snapshotOf({ releases: [1, 2, 3, 4], ready: { "web-1": [1, 2, 3, 4] }, keep: 1 })
  assert.deepEqual(releasesToRemove(app, new Set()), [])
})

test("auto-deploy picks the newest release ready everywhere that is newer than the current deploy", () => {
  const base = { releases: [1, 2, 3], ready: { "web-1": [1, 2], "web-2": [1, 2, 3] }, autoDeploy: true }
  assert.deepEqual(decideAutoDeploy(snapshotOf(base).app, snapshotOf(base).nodes, new Date()), {
    kind: "deploy",
    sha: sha(2)
  })
  const deployedLater = snapshotOf({ ...base, deploy: { sha: sha(1), index: 25 } })
  assert.deepEqual(decideAutoDeploy(deployedLater.app, deployedLater.nodes, new Date()), { kind: "none" })
  const off = snapshotOf({ ...base, autoDeploy: false })
  assert.deepEqual(decideAutoDeploy(off.app, off.nodes, new Date()), { kind: "none" })
  const locked = snapshotOf({ ...base, lock: true })
  assert.equal(decideAutoDeploy(locked.app, locked.nodes, new Date()).kind, "held")
  const pinned = snapshotOf({ ...base, pin: true })
  assert.deepEqual(decideAutoDeploy(pinned.app, pinned.nodes, new Date()), {
    kind: "held",
    sha: sha(2),
    reason: `pinned at ${sha(1).slice(0, 7)} by bob`
  })
})

test("auto-deploy on a repo-backed app only takes releases of the deploy branch", () => {
  const s = snapshotOf({
    releases: [1, 2],
    ready: { "web-1": [1, 2] },
    autoDeploy: true,
    repo: "acme/shop",
    branches: { 1: "main", 2: "feature" }
  })
  assert.deepEqual(decideAutoDeploy(s.app, s.nodes, new Date()), { kind: "deploy", sha: sha(1) })
})

test("KV-only leader: auto-deploys each ready release once, holds while locked, and applies retention", {
  timeout: 120_000
}, async (t) => {
  const consul = await startConsul()
  t.after(() => consul.close())
  const prefix = randomPrefix()
  const node = await registerNode(consul.addr, prefix, "web-1")
  t.after(() => node.stop())
  await putKv(consul.addr, `${prefix}/shop/config`, {
    artifact: "file:///srv/{sha}.tgz",
    autoDeploy: true,
    keepReleases: 2
  })
  const running = startReporter({ consul: consul.addr, prefix })
  t.after(() => running.stop())
  await eventually("leadership", () => running.metrics.get("sacar_leader") === 1)

  const shas: string[] = []
  let previous: string | null = null
  for (let i = 0; i < 4; i++) {
    const s = randomSha()
    shas.push(s)
    await putKv(consul.addr, `${prefix}/shop/releases/${s}`, { createdAt: new Date().toISOString() })
    await prepareOn(node, "shop", s)
    const deploy = await eventually(`auto-deploy of release ${i + 1}`, async () => {
      const d = await getJson(consul.addr, `${prefix}/shop/deploy`)
      return d?.sha === s ? d : undefined
    })
    assert.equal(deploy.requestedBy, "sacar (auto-deploy)")
    // The node goes live on it, as a reconciler would.
    await node.status("shop", { current: s, previous })
    previous = s
  }
  // Once per sha: no rewrite of the same DeploySpec afterwards.
  const index = (await listPrefix(consul.addr, prefix)).get(`${prefix}/shop/deploy`)!.modifyIndex
  await sleep(1500)
  assert.equal((await listPrefix(consul.addr, prefix)).get(`${prefix}/shop/deploy`)!.modifyIndex, index)

  // Retention: keepReleases 2 of 4 ready; current (4) and previous (3) are the newest anyway.
  await eventually("retention", async () => {
    const keys = [...(await listPrefix(consul.addr, prefix)).keys()].filter((k) => k.includes("/releases/"))
    return keys.length === 2 ? keys : undefined
  })
  const left = [...(await listPrefix(consul.addr, prefix)).keys()].filter((k) => k.includes("/releases/")).map((k) =>
    k.split("/").at(-1)
  )
  assert.deepEqual(left.sort(), [shas[2], shas[3]].sort())

  // Locked: a new ready release is not deployed.
  await putKv(consul.addr, `${prefix}/shop/lock`, { by: "alice", reason: "freeze", at: new Date().toISOString() })
  const held = randomSha()
  await putKv(consul.addr, `${prefix}/shop/releases/${held}`, { createdAt: new Date().toISOString() })
  await prepareOn(node, "shop", held)
  await sleep(2000)
  assert.equal((await getJson(consul.addr, `${prefix}/shop/deploy`)).sha, shas[3])
  // Unlocked: it goes out.
  await new Kv(consul.addr, prefix).delete("shop/lock")
  await eventually(
    "auto-deploy after unlock",
    async () => (await getJson(consul.addr, `${prefix}/shop/deploy`))?.sha === held
  )
})

test("KV-only leader: a failed release past SACAR_FAILED_RELEASE_TTL is removed with its record; one inside it stays", {
  timeout: 60_000
}, async (t) => {
  const consul = await startConsul()
  t.after(() => consul.close())
  const prefix = randomPrefix()
  const node = await registerNode(consul.addr, prefix, "web-1")
  t.after(() => node.stop())
  await putKv(consul.addr, `${prefix}/shop/config`, { artifact: "file:///srv/{sha}.tgz" })
  const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString()
  const stale = randomSha()
  const recent = randomSha()
  for (const [sha, minutesAgo] of [[stale, 120], [recent, 10]] as const) {
    await putKv(consul.addr, `${prefix}/shop/releases/${sha}`, { createdAt: at(minutesAgo + 5) })
    await putKv(consul.addr, `${prefix}/shop/github/${sha}`, { repo: "acme/shop", sha, createdAt: at(minutesAgo + 5) })
    await node.status("shop", {
      releases: { [sha]: { phase: "failed", message: "install: pip exited 1", finishedAt: at(minutesAgo) } }
    })
  }
  const running = startReporter({
    consul: consul.addr,
    prefix,
    pruning: { ...DEFAULT_PRUNING, failedReleaseTtlMs: 3_600_000 }
  })
  t.after(() => running.stop())

  const keysLeft = async () => [...(await listPrefix(consul.addr, prefix)).keys()]
  const left = await eventually("the stale failed release is removed", async () => {
    const keys = await keysLeft()
    return keys.includes(`${prefix}/shop/releases/${stale}`) ? undefined : keys
  })
  assert.ok(!left.includes(`${prefix}/shop/github/${stale}`), "its record went with it")
  // Both were judged in the same pass; another minute's passes would judge them alike.
  assert.ok(left.includes(`${prefix}/shop/releases/${recent}`), "failed 10 minutes ago: inside its TTL")
  assert.ok(left.includes(`${prefix}/shop/github/${recent}`))
})

test("leader election: one leader at a time; when it stops, the other takes over", { timeout: 60_000 }, async (t) => {
  const consul = await startConsul()
  t.after(() => consul.close())
  const prefix = randomPrefix()
  const a = startReporter({ consul: consul.addr, prefix, identity: "a" })
  t.after(() => a.stop())
  await eventually("a leads", () => a.metrics.get("sacar_leader") === 1)
  const b = startReporter({ consul: consul.addr, prefix, identity: "b" })
  t.after(() => b.stop())
  await sleep(1500)
  assert.equal(b.metrics.get("sacar_leader"), 0)
  const raw = await fetch(`${consul.addr}/v1/kv/${prefix}/_controller/leader`).then((r) => r.text())
  // The flag is above 2^53: compare the digits, not a rounded number.
  assert.match(raw, /"Flags":\s*3304740253564472344\b/, "Go api lock flags")
  const holder = JSON.parse(raw) as Array<{ Session?: string; Value: string }>
  assert.match(Buffer.from(holder[0]!.Value, "base64").toString(), /"holder":"a"/)
  await a.stop()
  await eventually("b takes over", () => b.metrics.get("sacar_leader") === 1, 10_000)
})
