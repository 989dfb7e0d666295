// The status page at 50 apps x 100 nodes x 5 releases (5,000 node statuses, 25,000
// release cells), without I/O: the cost of the first build, of a change to one node
// (what every watch wake-up costs), of the full page and of one live update. Prints
// the figures; the bounds are loose enough for a loaded CI machine and still fail if
// a change makes the page redecode every app on every write.
import assert from "node:assert/strict"
import { describe, it } from "node:test"
import type { KvEntry } from "../../src/consul/consul.ts"
import { emptyPageCache, nextPageState } from "../../src/controller/page/feed.ts"
import { appSection, pageHtml } from "../../src/controller/page/html.ts"
import { appView, summaryOf } from "../../src/controller/page/view.ts"
import { makeKeys } from "../../src/spec/keys.ts"

const APPS = 50
const NODES = 100
const RELEASES = 5

const sha = (app: number, r: number) => `${app.toString(16).padStart(4, "0")}${r.toString(16).padStart(36, "0")}`
const node = (n: number) => `web-${String(n).padStart(3, "0")}`

const world = () => {
  const keys = makeKeys("sacar")
  const at = new Date(Date.now() - 60_000).toISOString()
  const entries: KvEntry[] = []
  let index = 1
  const put = (key: string, value: unknown) =>
    entries.push(
      {
        key,
        value: JSON.stringify(value),
        modifyIndex: index++,
        createIndex: 1,
        flags: 0,
        // Registrations are held by the node's session: only those count as live.
        session: key.includes("/_nodes/") ? "session" : undefined
      } as unknown as KvEntry
    )
  for (let n = 0; n < NODES; n++)
    put(`sacar/_nodes/${node(n)}`, { node: node(n), version: "0.1.0", startedAt: at, root: "/srv" })
  for (let a = 0; a < APPS; a++) {
    const app = `app-${a}`
    put(`sacar/${app}/config`, { nodes: ["web-*"], maxParallel: 10 })
    for (let r = 0; r < RELEASES; r++) put(`sacar/${app}/releases/${sha(a, r)}`, { createdAt: at })
    put(`sacar/${app}/deploy`, { sha: sha(a, 0), requestedBy: "ana", requestedAt: at })
    const generation = index - 1
    for (let n = 0; n < NODES; n++) {
      const releases = Object.fromEntries(
        Array.from({ length: RELEASES }, (_, r) => [sha(a, r), {
          phase: r === 1 && n % 17 === 0 ? "failed" : "ready",
          startedAt: at,
          finishedAt: at,
          message: r === 1 && n % 17 === 0 ? "bin/prepare failed (exit code 1)" : undefined,
          log: r === 1 && n % 17 === 0 ? "line\n".repeat(200) : undefined,
          steps: {
            download: { ms: 1200 },
            extract: { ms: 300 },
            venv: { ms: 2000 },
            install: { ms: 9000 },
            prepare: { ms: 800 }
          }
        }])
      )
      put(`sacar/${app}/status/${node(n)}`, {
        node: node(n),
        updatedAt: at,
        releases,
        current: sha(a, 0),
        deploy: { generation, sha: sha(a, 0), phase: n < 50 ? "live" : "waiting" }
      })
    }
  }
  return { keys, entries, next: () => index++ }
}

const time = <A>(f: () => A): { value: A; ms: number } => {
  const started = performance.now()
  const value = f()
  return { value, ms: performance.now() - started }
}

describe("status page at 50 apps x 100 nodes", () => {
  it("rebuilds only what changed, and renders the page and a live update quickly", () => {
    const { keys, entries, next } = world()
    const cache = emptyPageCache()
    const cold = time(() => nextPageState(keys, cache, 1000, entries, new Date()))
    assert.equal(cold.value.apps.length, APPS)

    // One node of one app reports: only that app is decoded again.
    const i = entries.findIndex((e) => e.key === `sacar/app-7/status/${node(60)}`)
    const changed = { ...entries[i]!, modifyIndex: next() }
    const after = entries.with(i, changed)
    const warm = time(() => nextPageState(keys, cache, 2000, after, new Date()))
    const moved = warm.value.apps.filter((a) => a.changedAt === 2000).map((a) => a.report.app)
    assert.deepEqual(moved, ["app-7"])

    const now = new Date()
    const renderAll = () => {
      const views = warm.value.apps.map((a) => appView(a.report, now))
      return pageHtml({
        index: 2000,
        summary: summaryOf(views),
        sections: views.map((v) => appSection(v, now)),
        renderedAt: now
      })
    }
    const first = time(renderAll)
    const full = time(renderAll)
    const update = time(() => appSection(appView(warm.value.apps[7]!.report, now), now))
    const figures = {
      nodeStatuses: APPS * NODES,
      releaseCells: APPS * NODES * RELEASES,
      coldBuildMs: Math.round(cold.ms),
      oneNodeChangedMs: Math.round(warm.ms * 10) / 10,
      firstFullPageMs: Math.round(first.ms),
      fullPageMs: Math.round(full.ms),
      fullPageBytes: Buffer.byteLength(full.value),
      oneAppUpdateMs: Math.round(update.ms * 10) / 10,
      oneAppUpdateBytes: Buffer.byteLength(update.value)
    }
    process.stdout.write(`page at scale: ${JSON.stringify(figures)}\n`)
    assert.ok(full.value.includes(`id="app-app-49"`))
    assert.ok(
      warm.ms < cold.ms / 5,
      `one change (${warm.ms} ms) must cost far less than the first build (${cold.ms} ms)`
    )
    assert.ok(full.ms < 3_000, `the full page took ${full.ms} ms`)
    assert.ok(update.ms < 300, `one app's update took ${update.ms} ms`)
  })
})
