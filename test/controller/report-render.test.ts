// render(): the check run a commit should show, from documents alone (no I/O).
import * as Schema from "effect/Schema"
import assert from "node:assert/strict"
import { test } from "node:test"
import { deployView, releaseView } from "../../src/controller/report/release-view.ts"
import { digestOf, render, toCommitStatus } from "../../src/controller/report/render.ts"
import type { RenderInput } from "../../src/controller/report/render.ts"
import type { AppSnapshot } from "../../src/controller/report/snapshot.ts"
import { AppConfig } from "../../src/spec/documents.ts"
import type { NodeStatus, ReleaseStatus } from "../../src/spec/documents.ts"
import type { PredeployView } from "../../src/spec/tree.ts"

const SHA = "a".repeat(40)
const NOW = Date.parse("2026-11-27T10:05:00Z")
/** SACAR_ARTIFACT_WAIT of these tests: six hours, not the default day. */
const WAIT_MS = 6 * 3600_000
const config = (over: Record<string, unknown> = {}) =>
  Schema.decodeUnknownSync(AppConfig)({ repo: "acme/shop", artifact: "file:///x/{sha}.tgz", nodes: ["web-*"], ...over })

const rel = (phase: ReleaseStatus["phase"], extra: Partial<ReleaseStatus> = {}): ReleaseStatus => ({
  phase,
  attempt: 1,
  steps: phase === "ready"
    ? {
      download: { ms: 812 },
      extract: { ms: 390 },
      lock: { ms: 1 },
      venv: { ms: 2100 },
      install: { ms: 30111 },
      prepare: { ms: 7800 }
    }
    : {},
  ...extra
})

const status = (
  node: string,
  releases: Record<string, ReleaseStatus>,
  extra: Partial<NodeStatus> = {}
): NodeStatus => ({
  node,
  updatedAt: "2026-11-27T10:01:02Z",
  releases,
  current: null,
  deploy: null,
  ...extra
})

const appWith = (
  statuses: NodeStatus[],
  deploy?: { sha: string; generation: number },
  predeploy?: PredeployView
): AppSnapshot => ({
  app: "shop",
  config: config(),
  releases: new Map(),
  deploy: deploy === undefined
    ? undefined
    : {
      doc: { sha: deploy.sha, requestedBy: "octocat" },
      createIndex: 1,
      modifyIndex: deploy.generation,
      generation: deploy.generation
    },
  statuses: new Map(statuses.map((s) => [s.node, s])),
  lock: undefined,
  pin: undefined,
  github: new Map(),
  predeploy: new Map(predeploy ? [[predeploy.generation, predeploy]] : [])
})

const input = (
  statuses: NodeStatus[],
  over: Partial<RenderInput> = {},
  expected = ["web-1", "web-2", "web-3"]
): RenderInput => ({
  app: "shop",
  sha: SHA,
  config: config(),
  branch: "main",
  hasRelease: true,
  release: releaseView(SHA, expected, new Map(statuses.map((s) => [s.node, s]))),
  startedAt: NOW - 60_000,
  deploy: undefined,
  lock: undefined,
  pin: undefined,
  refused: undefined,
  autoDeployedAt: undefined,
  now: NOW,
  publicUrl: undefined,
  artifactWaitMs: WAIT_MS,
  ...over
})

test("no ReleaseSpec yet on the deploy branch: queued, waiting for the build artifact", () => {
  const view = render(input([], { hasRelease: false }))
  assert.equal(view.status, "queued")
  assert.equal(view.conclusion, undefined)
  assert.equal(view.title, "Waiting for build artifact")
  assert.deepEqual(view.actions, [])
})

test("a commit of another branch without a release: neutral with a Prepare button", () => {
  const view = render(input([], { hasRelease: false, branch: "feature-x" }))
  assert.equal(view.status, "completed")
  assert.equal(view.conclusion, "neutral")
  assert.deepEqual(view.actions.map((a) => a.identifier), ["prepare"])
  assert.match(view.summary, /feature-x/)
})

test("preparing: in_progress, 'N of M nodes ready', a table of nodes, phases and step times", () => {
  const view = render(input([
    status("web-1", { [SHA]: rel("ready") }),
    status("web-2", { [SHA]: rel("install", { steps: { download: { ms: 1500 } } }) })
  ]))
  assert.equal(view.status, "in_progress")
  assert.equal(view.title, "1 of 3 nodes ready")
  assert.match(view.summary, /\*\*1 of 3 nodes ready\*\*/)
  assert.match(view.summary, /\| node \| phase \| download \| extract \| lock \| venv \| install \| prepare \|/)
  assert.match(view.summary, /\| web-1 \| ready \| 812ms \| 390ms \| 1ms \| 2\.1s \| 30\.1s \| 7\.8s \|/)
  assert.match(view.summary, /\| web-2 \| install \| 1\.5s \|/)
  assert.match(view.summary, /\| web-3 \| unreported \|/)
  assert.deepEqual(view.actions, [])
})

test("ready everywhere on the deploy branch: success, Ready to deploy, Deploy button, details_url", () => {
  const all = ["web-1", "web-2", "web-3"].map((n) => status(n, { [SHA]: rel("ready") }))
  const view = render(input(all, { publicUrl: "https://sacar.example" }))
  assert.equal(view.status, "completed")
  assert.equal(view.conclusion, "success")
  assert.equal(view.title, "Ready to deploy: 3 of 3 nodes ready")
  assert.deepEqual(view.actions.map((a) => [a.identifier, a.label]), [["deploy", "Deploy"]])
  assert.equal(view.detailsUrl, "https://sacar.example/v1/apps/shop")
})

test("ready on another branch: success without a Deploy button", () => {
  const all = ["web-1"].map((n) => status(n, { [SHA]: rel("ready") }))
  const view = render(input(all, { branch: "feature-x" }, ["web-1"]))
  assert.equal(view.conclusion, "success")
  assert.match(view.title, /^Prepared: 1 of 1 nodes ready$/)
  assert.deepEqual(view.actions, [])
})

test("no expected node: never ready, says why", () => {
  const view = render(input([], {}, []))
  assert.equal(view.status, "in_progress")
  assert.equal(view.title, "0 of 0 nodes ready")
  assert.match(view.summary, /No live node matches/)
})

test("a failed node: failure naming the node, the step and the log tail", () => {
  const log = `${"x".repeat(10_000)}\nERROR: No matching distribution found for flask==9`
  const view = render(input([
    status("web-1", { [SHA]: rel("ready") }),
    status("web-2", {
      [SHA]: rel("failed", {
        message: "install: pip exited with status 1",
        steps: { download: { ms: 10 }, extract: { ms: 5 } },
        log
      })
    })
  ]))
  assert.equal(view.status, "completed")
  assert.equal(view.conclusion, "failure")
  assert.equal(view.title, "Failed on web-2 at install")
  assert.match(view.summary, /web-2 failed at install: pip exited with status 1/)
  assert.ok(view.text !== undefined)
  assert.match(view.text, /No matching distribution found for flask==9/)
  assert.ok(Buffer.byteLength(view.text) < 6000, "only the tail of the log is shown")
})

test("the failed step falls back to the first step without a time", () => {
  const view = render(
    input(
      [status("web-1", {
        [SHA]: rel("failed", { message: "boom", steps: { download: { ms: 10 }, extract: { ms: 5 } } })
      })],
      {},
      ["web-1"]
    )
  )
  assert.equal(view.title, "Failed on web-1 at lock")
})

test("not ready within prepareTimeout: timed_out", () => {
  const view = render(input([status("web-1", { [SHA]: rel("ready") }), status("web-2", { [SHA]: rel("download") })], {
    startedAt: NOW - 16 * 60_000
  }, ["web-1", "web-2"]))
  assert.equal(view.status, "completed")
  assert.equal(view.conclusion, "timed_out")
  assert.equal(view.title, "Not ready after 15m: 1 of 2 nodes ready")
  assert.match(view.summary, /web-2 \(download\)/)
})

test("deploy progress and outcome appear in the summary; Deploy hidden while deploying", () => {
  const expected = ["web-1", "web-2"]
  const gen = 42
  const statuses = [
    status("web-1", { [SHA]: rel("ready") }, { deploy: { generation: gen, sha: SHA, phase: "live" } }),
    status("web-2", { [SHA]: rel("ready") }, { deploy: { generation: gen, sha: SHA, phase: "deploying" } })
  ]
  const deploying = deployView(appWith(statuses, { sha: SHA, generation: gen }), expected)
  const view = render(input(statuses, { deploy: deploying }, expected))
  assert.equal(view.conclusion, "success")
  assert.equal(view.title, "Deploying: 1 of 2 nodes live")
  assert.match(view.summary, /### Deploy \(generation 42, requested by octocat\)/)
  assert.match(view.summary, /\*\*1 of 2 nodes live\.\*\*/)
  assert.deepEqual(view.actions, [])

  const live = statuses.map((s) => ({ ...s, deploy: { generation: gen, sha: SHA, phase: "live" as const } }))
  const done = render(
    input(live, { deploy: deployView(appWith(live, { sha: SHA, generation: gen }), expected) }, expected)
  )
  assert.equal(done.title, "Live on 2 of 2 nodes")
  assert.deepEqual(done.actions.map((a) => a.identifier), ["deploy"])
})

test("a halted deploy: failure naming the node and why; deployment description says it too", () => {
  const expected = ["web-1", "web-2"]
  const statuses = [
    status("web-1", { [SHA]: rel("ready") }, { deploy: { generation: 7, sha: SHA, phase: "live" } }),
    status("web-2", { [SHA]: rel("ready") }, {
      deploy: {
        generation: 7,
        sha: SHA,
        phase: "failed",
        message: "bin/deploy exited with status 3",
        log: "migrations pending"
      }
    })
  ]
  const dv = deployView(appWith(statuses, { sha: SHA, generation: 7 }), expected)!
  assert.equal(dv.state, "failure")
  assert.equal(dv.description, "web-2 failed: bin/deploy exited with status 3")
  const view = render(input(statuses, { deploy: dv }, expected))
  assert.equal(view.conclusion, "failure")
  assert.equal(view.title, "Deploy failed on web-2")
  assert.match(view.text ?? "", /migrations pending/)
})

test("a failed pre-deploy halts the deploy and is named", () => {
  const expected = ["web-1"]
  const statuses = [status("web-1", { [SHA]: rel("ready") }, { deploy: { generation: 9, sha: SHA, phase: "waiting" } })]
  const dv = deployView(
    appWith(statuses, { sha: SHA, generation: 9 }, {
      generation: 9,
      state: "failed",
      node: "web-1",
      message: "bin/pre-deploy exited 2"
    }),
    expected
  )!
  assert.equal(dv.state, "failure")
  assert.match(dv.description, /^pre-deploy failed on web-1: bin\/pre-deploy exited 2$/)
  assert.equal(render(input(statuses, { deploy: dv }, expected)).title, "Deploy failed: pre-deploy on web-1")
})

test("lock and pin are explained; a lock removes the Deploy button", () => {
  const all = ["web-1"].map((n) => status(n, { [SHA]: rel("ready") }))
  const lock = { by: "alice", reason: "black friday freeze", at: "2026-11-27T09:00:00Z" }
  const locked = render(input(all, { lock, config: config({ autoDeploy: true }) }, ["web-1"]))
  assert.deepEqual(locked.actions, [])
  assert.match(locked.summary, /locked by alice: black friday freeze/)
  assert.match(locked.summary, /Auto-deploy is held until the lock is lifted/)
  const pinned = render(
    input(all, {
      pin: { sha: "b".repeat(40), by: "bob", reason: "rollback", at: "2026-11-27T09:00:00Z" },
      config: config({ autoDeploy: true })
    }, ["web-1"])
  )
  assert.match(pinned.summary, /Auto-deploy is paused: pinned at `bbbbbbb` by bob/)
  assert.deepEqual(pinned.actions.map((a) => a.identifier), ["deploy"])
})

test("a refused deploy request is shown", () => {
  const all = ["web-1"].map((n) => status(n, { [SHA]: rel("ready") }))
  const view = render(
    input(all, { refused: { reason: "shop is locked by alice: freeze", by: "octocat", at: "2026-11-27T10:00:00Z" } }, [
      "web-1"
    ])
  )
  assert.match(view.summary, /requested by octocat .* was refused: shop is locked by alice: freeze/)
})

test("summary and text stay within GitHub's 65535-byte limits with many nodes and huge messages", () => {
  const expected = Array.from({ length: 400 }, (_, i) => `web-${i}`)
  const statuses = expected.map((n) =>
    status(n, { [SHA]: rel("failed", { message: "é".repeat(300), log: "ü".repeat(10_000) }) })
  )
  const view = render(input(statuses, {}, expected))
  assert.ok(Buffer.byteLength(view.summary) <= 65535)
  assert.ok(Buffer.byteLength(view.text ?? "") <= 65535)
  assert.match(view.summary, /cut by Sacar/)
})

test("the digest is stable for equal inputs and changes with content", () => {
  const a = input([status("web-1", { [SHA]: rel("download") })], {}, ["web-1"])
  assert.equal(digestOf(render(a)), digestOf(render({ ...a })))
  const b = input([status("web-1", { [SHA]: rel("install") })], {}, ["web-1"])
  assert.notEqual(digestOf(render(a)), digestOf(render(b)))
})

test("token mode: one commit status per app; neutral runs send nothing", () => {
  const ready = render(input(["web-1"].map((n) => status(n, { [SHA]: rel("ready") })), {}, ["web-1"]))
  assert.deepEqual(toCommitStatus(ready), {
    state: "success",
    description: "Ready to deploy: 1 of 1 nodes ready",
    targetUrl: undefined
  })
  assert.equal(toCommitStatus(render(input([], { hasRelease: false })))?.state, "pending")
  assert.equal(toCommitStatus(render(input([], { hasRelease: false, branch: "dev" }))), undefined)
})

test("a commit whose artifact never came stops waiting after SACAR_ARTIFACT_WAIT: neutral, with Prepare", () => {
  const waiting = render(input([], { hasRelease: false, waitingSince: NOW - WAIT_MS + 60_000 }))
  assert.equal(waiting.status, "queued")
  const view = render(input([], { hasRelease: false, waitingSince: NOW - WAIT_MS }))
  assert.equal(view.status, "completed")
  assert.equal(view.conclusion, "neutral")
  assert.equal(view.title, "No build artifact arrived")
  assert.match(view.summary, /within 6h;/)
  assert.deepEqual(view.actions.map((a) => a.identifier), ["prepare"])
})
