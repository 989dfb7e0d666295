// What the leader remembers between passes follows what the app still has (its
// commits and deploy generations), not the history of every commit it ever reported.
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import { githubPass, newMemory } from "../../src/controller/report/github-report.ts"
import { DEFAULT_PRUNING } from "../../src/controller/report/pruning.ts"
import type { Snapshot } from "../../src/controller/report/snapshot.ts"
import type { GitHubShape } from "../../src/github/github.ts"
import { makeKeys } from "../../src/spec/keys.ts"

const OLD = "0".repeat(40)
const KEPT = "1".repeat(40)

test("a pass forgets what it remembered about commits and generations the app no longer has", async () => {
  const memory = newMemory()
  const sent = { digest: "d", at: 1, status: "completed", checkRunId: 7 }
  memory.sent.set(`shop/${OLD}`, sent)
  memory.sent.set(`shop/${KEPT}`, sent)
  memory.sent.set(`other/${OLD}`, sent)
  memory.failures.set(`check/shop/${OLD}`, { retryAt: 0, count: 1, parked: true })
  memory.firstSeen.set(`shop/${OLD}/12`, 1)
  memory.firstSeen.set(`shop/${KEPT}/30`, 1)
  memory.firstSeen.set(`deploy/shop/40`, 1)
  memory.deployments.set(`shop/40`, { id: 1, state: "success" })

  // The app still has KEPT (a release, modified at 30, without a repo: nothing to send).
  const snapshot: Snapshot = {
    index: 50,
    nodes: new Set(),
    problems: [],
    apps: new Map([["shop", {
      app: "shop",
      config: { artifact: "file:///x/{sha}.tgz" } as never,
      releases: new Map([[KEPT, { doc: {}, createIndex: 30, modifyIndex: 30 }]]),
      deploy: undefined,
      statuses: new Map(),
      lock: undefined,
      pin: undefined,
      github: new Map(),
      predeploy: new Map()
    }]])
  }
  const options = {
    keys: makeKeys("sacar"),
    github: { mode: "app" } as unknown as GitHubShape,
    publicUrl: undefined,
    coalesceMs: 2_000,
    metrics: undefined,
    memory,
    pruning: DEFAULT_PRUNING
  }
  // No GitHub or Consul call is made for an app without a repo.
  await Effect.runPromise(githubPass(options, snapshot, "shop").pipe(Effect.provideService(Consul, {} as never)))

  assert.deepEqual([...memory.sent.keys()].sort(), [`other/${OLD}`, `shop/${KEPT}`])
  assert.deepEqual([...memory.failures.keys()], [])
  assert.deepEqual([...memory.firstSeen.keys()], [`shop/${KEPT}/30`])
  assert.deepEqual([...memory.deployments.keys()], [])

  // An app that went: everything about it goes.
  await Effect.runPromise(
    githubPass(options, { ...snapshot, apps: new Map() }, "shop").pipe(Effect.provideService(Consul, {} as never))
  )
  assert.deepEqual([...memory.sent.keys()], [`other/${OLD}`])
})
