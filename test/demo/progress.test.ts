// The demo's view of the nodes: from snapshots to plain lines, the live table and the
// decisions "prepared everywhere", "live everywhere", "failed".
import assert from "node:assert/strict"
import { test } from "node:test"
import {
  changeLines,
  deployOutcome,
  linkedSha,
  type NodeView,
  nodeViews,
  prepareOutcome,
  renderTable,
  stepTimes
} from "../../src/demo/progress.ts"
import type { NodeStatus, ReleaseStatus } from "../../src/spec/documents.ts"
import type { AppState } from "../../src/state/snapshot.ts"

const SHA = "a".repeat(40)
const OTHER = "b".repeat(40)
const NODES = ["demo-1", "demo-2", "demo-3"]

const release = (
  phase: ReleaseStatus["phase"],
  steps: Record<string, number> = {},
  extra: Partial<ReleaseStatus> = {}
): ReleaseStatus => ({
  phase,
  attempt: 1,
  steps: Object.fromEntries(Object.entries(steps).map(([k, ms]) => [k, { ms }])),
  ...extra
})

const status = (node: string, fields: Partial<NodeStatus> = {}): NodeStatus => ({
  node,
  updatedAt: "2026-11-27T10:00:00Z",
  releases: {},
  current: null,
  deploy: null,
  ...fields
})

const snapshot = (statuses: NodeStatus[], expected = NODES): AppState => ({
  app: "shop",
  config: undefined,
  releases: [],
  deploy: undefined,
  statuses: Object.fromEntries(statuses.map((s) => [s.node, s])),
  expectedNodes: expected,
  lock: undefined,
  pin: undefined,
  problems: [],
  index: 1
})

const view = (node: string, fields: Partial<NodeView> = {}): NodeView => ({
  node,
  registered: true,
  release: undefined,
  deploy: undefined,
  reportedCurrent: null,
  currentLink: undefined,
  ...fields
})

test("nodeViews picks the watched release and only the deploy of the watched generation", () => {
  const s = snapshot(
    [
      status("demo-1", {
        releases: { [SHA]: release("install", { download: 5 }), [OTHER]: release("ready") },
        current: OTHER,
        deploy: { generation: 7, sha: OTHER, phase: "live" }
      }),
      status("demo-2", { deploy: { generation: 9, sha: SHA, phase: "deploying" } })
    ],
    ["demo-1", "demo-2"]
  )
  const views = nodeViews(s, { sha: SHA, generation: 9 }, NODES, { "demo-1": `releases/${OTHER}` })
  assert.equal(views.length, 3)
  assert.equal(views[0]!.release?.phase, "install")
  assert.equal(views[0]!.deploy, undefined, "generation 7 is an older deploy")
  assert.equal(views[0]!.reportedCurrent, OTHER)
  assert.equal(views[0]!.currentLink, `releases/${OTHER}`)
  assert.equal(views[1]!.deploy?.phase, "deploying")
  assert.deepEqual([views[2]!.registered, views[2]!.release, views[2]!.currentLink], [false, undefined, undefined])
  assert.equal(nodeViews(s, { sha: SHA, generation: undefined }, NODES, {})[1]!.deploy, undefined)
})

test("linkedSha reads a relative or absolute releases/<sha> link", () => {
  assert.equal(linkedSha(`releases/${SHA}`), SHA)
  assert.equal(linkedSha(`/root/shop/releases/${SHA}/`), SHA)
  assert.equal(linkedSha("releases/nope"), undefined)
  assert.equal(linkedSha(undefined), undefined)
})

test("plain lines: one per phase change, with the times of the steps finished since", () => {
  const before = view("demo-2", { release: release("venv", { download: 12, extract: 30, lock: 1 }) })
  const after = view("demo-2", { release: release("install", { download: 12, extract: 30, lock: 1, venv: 400 }) })
  assert.deepEqual(changeLines(before, after, "every"), ["demo-2  install   (venv 400ms)"])
  assert.deepEqual(changeLines(after, after, "every"), [], "nothing changed, nothing said")
  // Phases the watch did not see still get their step times.
  const first = changeLines(view("demo-2", { registered: false }), before, "every")
  assert.deepEqual(first, [
    "demo-2  up        reconciler registered",
    "demo-2  venv      (download 12ms, extract 30ms, lock 1ms)"
  ])
})

test("plain lines for ready, failed, deploy phases and the current switch", () => {
  const steps = { download: 12, extract: 30, lock: 1, venv: 1900, install: 2100, prepare: 800 }
  const ready = changeLines(
    view("demo-1", { release: release("prepare", {}) }),
    view("demo-1", { release: release("ready", steps) }),
    "every"
  )
  assert.deepEqual(ready, [
    "demo-1  ready     prepared in 4.8s (download 12ms, extract 30ms, lock 1ms, venv 1.9s, install 2.1s, prepare 800ms)"
  ])
  const failed = changeLines(
    view("demo-3", { release: release("install", { venv: 10 }) }),
    view("demo-3", {
      release: release("failed", { venv: 10, install: 50 }, { message: "pip install failed (exit 1)" })
    }),
    "every"
  )
  assert.deepEqual(failed, ["demo-3  failed    (install 50ms) pip install failed (exit 1)"])
  const deployBefore = view("demo-1", { deploy: { generation: 3, sha: SHA, phase: "deploying" } })
  const live = view("demo-1", {
    deploy: { generation: 3, sha: SHA, phase: "live" },
    reportedCurrent: SHA,
    currentLink: `releases/${SHA}`
  })
  assert.deepEqual(changeLines(deployBefore, live, "every"), [
    "demo-1  deploy    live",
    "demo-1  current   -> releases/aaaaaaa"
  ])
  const broken = view("demo-1", {
    deploy: { generation: 3, sha: SHA, phase: "failed", message: "bin/deploy exited with 3" }
  })
  assert.deepEqual(changeLines(deployBefore, broken, "milestones"), [
    "demo-1  deploy    failed: bin/deploy exited with 3"
  ])
})

test("milestones leave out the intermediate phases", () => {
  const a = view("demo-1", { registered: false })
  const b = view("demo-1", {
    release: release("install", { venv: 1 }),
    deploy: { generation: 1, sha: SHA, phase: "waiting" }
  })
  assert.deepEqual(changeLines(a, b, "milestones"), [])
  assert.deepEqual(changeLines(a, b, "every"), [
    "demo-1  up        reconciler registered",
    "demo-1  install   (venv 1ms)",
    "demo-1  deploy    waiting for its turn (maxParallel)"
  ])
})

test("a new attempt of the same phase is a change", () => {
  const a = view("demo-1", { release: release("failed", {}, { attempt: 1 }) })
  const b = view("demo-1", { release: release("download", {}, { attempt: 2 }) })
  assert.deepEqual(changeLines(a, b, "every"), ["demo-1  download"])
})

test("prepareOutcome: done when all are ready, the first failure with its log", () => {
  const ready = NODES.map((n) => view(n, { release: release("ready") }))
  assert.deepEqual(prepareOutcome(ready), { kind: "done" })
  assert.deepEqual(prepareOutcome([...ready.slice(0, 2), view("demo-3", { release: release("venv") })]), {
    kind: "waiting"
  })
  assert.deepEqual(prepareOutcome([...ready.slice(0, 2), view("demo-3")]), { kind: "waiting" })
  const failed = prepareOutcome([
    ready[0]!,
    view("demo-2", { release: release("failed", {}, { message: "boom", log: "trace" }) }),
    ready[2]!
  ])
  assert.deepEqual(failed, { kind: "failed", node: "demo-2", message: "preparing failed: boom", log: "trace" })
})

test("deployOutcome needs live, the node's own report and the link on disk", () => {
  const live = (n: string, link = `releases/${SHA}`, current: string | null = SHA) =>
    view(n, { deploy: { generation: 2, sha: SHA, phase: "live" }, reportedCurrent: current, currentLink: link })
  assert.deepEqual(deployOutcome(NODES.map((n) => live(n)), SHA), { kind: "done" })
  assert.deepEqual(deployOutcome([live("demo-1"), live("demo-2"), live("demo-3", `releases/${OTHER}`)], SHA), {
    kind: "waiting"
  })
  assert.deepEqual(deployOutcome([live("demo-1"), live("demo-2"), live("demo-3", `releases/${SHA}`, null)], SHA), {
    kind: "waiting"
  })
  const failed = deployOutcome([
    live("demo-1"),
    view("demo-2", { deploy: { generation: 2, sha: SHA, phase: "failed", message: "no", log: "x" } })
  ], SHA)
  assert.deepEqual(failed, { kind: "failed", node: "demo-2", message: "deploy failed: no", log: "x" })
})

test("the live table: a row per node with a step bar, deploy state and current", () => {
  const now = new Date("2026-11-27T10:00:05Z")
  const views = [
    view("demo-1", {
      release: release("ready", { download: 10, extract: 10, lock: 1, venv: 1000, install: 2000, prepare: 500 }),
      deploy: { generation: 4, sha: SHA, phase: "live" },
      currentLink: `releases/${SHA}`
    }),
    view("demo-2", {
      release: release("install", { download: 10, extract: 10, lock: 1, venv: 1000 }, {
        startedAt: "2026-11-27T10:00:02Z"
      }),
      deploy: { generation: 4, sha: SHA, phase: "waiting" }
    }),
    view("demo-3", { registered: false })
  ]
  const lines = renderTable(views, { sha: SHA, generation: 4 }, now)
  assert.deepEqual(lines, [
    "  NODE     PREPARE aaaaaaa        DEPLOY    CURRENT",
    "  demo-1   ██████ ready in 3.5s   live      aaaaaaa",
    "  demo-2   ████░░ install 3s      waiting   -",
    "  demo-3   starting               -         -"
  ])
  const before = renderTable(views, { sha: SHA, generation: undefined }, now)
  assert.match(before[1]!, /ready in 3\.5s\s+-\s+aaaaaaa$/, "no deploy asked: the deploy column stays empty")
})

test("stepTimes lists the steps in their order", () => {
  assert.equal(stepTimes({ install: { ms: 1500 }, download: { ms: 3 } }), "download 3ms, install 1.5s")
  assert.equal(stepTimes({}), "")
})
