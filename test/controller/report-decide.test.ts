// What the leader sends to GitHub, as pure functions: no GitHub, no Consul, no clock.
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import {
  afterFailure,
  backingOff,
  decideCheckRun,
  decideCommitStatus,
  decideDeployment,
  DEPLOYMENT_GRACE_MS,
  isMirrorOf,
  lastReported,
  nextLook
} from "../../src/controller/report/github-decide.ts"
import type { CheckRunInput, DeploymentInput, Sent } from "../../src/controller/report/github-decide.ts"
import { phaseOf } from "../../src/controller/report/pacing.ts"
import { digestOf } from "../../src/controller/report/render.ts"
import type { CheckView, CommitStatusView } from "../../src/controller/report/render.ts"
import type { GitHubRecord } from "../../src/spec/github-record.ts"

const SHA = "a".repeat(40)
const NOW = Date.parse("2026-12-01T12:00:00Z")

const view = (over: Partial<CheckView> = {}): CheckView => ({
  status: "in_progress",
  conclusion: undefined,
  title: "1 of 3 nodes ready",
  summary: "",
  text: undefined,
  actions: [],
  detailsUrl: undefined,
  ...over
})
const READY = view({
  status: "completed",
  conclusion: "success",
  title: "Ready to deploy",
  actions: [{ label: "Deploy", description: "d", identifier: "deploy" }]
})

/** What was sent of `v`, `ago` ms before NOW. */
const sentOf = (v: CheckView, ago: number, checkRunId: number | undefined = 7): Sent => ({
  digest: digestOf(v),
  at: NOW - ago,
  status: v.status,
  checkRunId,
  phase: phaseOf(v, 0)
})

const checkRun = (over: Partial<CheckRunInput>): CheckRunInput => ({
  view: view(),
  last: undefined,
  recordedId: undefined,
  startedAt: undefined,
  failedNodes: 0,
  coalesceMs: 2_000,
  now: NOW,
  ...over
})

describe("check runs", () => {
  const cases: ReadonlyArray<[string, Partial<CheckRunInput>, string]> = [
    ["a commit never reported: look for a run to adopt, else create", {}, "Open"],
    ["the same view already sent: nothing", { last: sentOf(view(), 60_000) }, "Unchanged"],
    ["the same view, but no run id known anywhere: open one", {
      last: { ...sentOf(view(), 60_000), checkRunId: undefined }
    }, "Open"],
    ["new text in the same phase within the window: wait for it to end", {
      view: view({ title: "2 of 3 nodes ready" }),
      last: sentOf(view(), 500)
    }, "Wait"],
    ["new text in the same phase after the window: update", {
      view: view({ title: "2 of 3 nodes ready" }),
      last: sentOf(view(), 2_000)
    }, "Update"],
    ["a new phase is never held back, however recent the last send", {
      view: READY,
      last: sentOf(view(), 10)
    }, "Update"],
    ["a new failed node is a new phase", {
      view: view({ title: "1 failed" }),
      last: sentOf(view(), 10),
      failedNodes: 1
    }, "Update"],
    ["the run id only the record names is updated", {
      view: READY,
      recordedId: 9
    }, "Update"],
    ["what another term sent (no phase known) is not held back by the window", {
      view: view({ title: "2 of 3 nodes ready" }),
      last: { ...sentOf(view(), 10), phase: undefined }
    }, "Update"],
    ["a completed run that must show progress again: a new run", {
      view: view(),
      last: sentOf(READY, 60_000)
    }, "Open"]
  ]
  for (const [name, input, tag] of cases) {
    test(name, () => assert.equal(decideCheckRun(checkRun(input))._tag, tag))
  }

  test("the window widens with the release's age: half of it, never less than coalesceMs", () => {
    const changed = { view: view({ title: "2 of 3 nodes ready" }), last: sentOf(view(), 10_000) }
    assert.deepEqual(decideCheckRun(checkRun({ ...changed, startedAt: NOW - 60_000 })), {
      _tag: "Wait",
      until: NOW - 10_000 + 30_000
    })
    assert.equal(decideCheckRun(checkRun({ ...changed, startedAt: NOW - 12_000 }))._tag, "Update")
  })

  test("reopening names the completed run, so the one found to adopt is another", () => {
    assert.deepEqual(decideCheckRun(checkRun({ view: view(), last: sentOf(READY, 60_000, 42) })), {
      _tag: "Open",
      reopen: true,
      previousId: 42,
      digest: digestOf(view()),
      phase: phaseOf(view(), 0)
    })
  })

  test("an update names the run this term sent before the record's", () => {
    const decision = decideCheckRun(checkRun({ view: READY, last: sentOf(view(), 60_000, 5), recordedId: 9 }))
    assert.equal(decision._tag === "Update" && decision.checkRunId, 5)
  })
})

describe("what was last reported", () => {
  const record = (reported?: { at: string; digest: string }, checkRunId?: number): GitHubRecord => ({
    repo: "acme/shop",
    sha: SHA,
    createdAt: "2026-12-01T00:00:00Z",
    ...(checkRunId === undefined ? {} : { checkRunId }),
    ...(reported === undefined ? {} : { reported: { ...reported, status: "in_progress" } })
  })
  const mine: Sent = { digest: "mine", at: NOW, status: "in_progress", checkRunId: undefined, phase: "p" }

  test("the newer of this term's send and the record's wins; the record fills in a missing run id", () => {
    assert.equal(lastReported(undefined, record()), undefined)
    assert.equal(lastReported(mine, record()), mine)
    assert.equal(lastReported(undefined, record({ at: "2026-12-01T11:00:00Z", digest: "r" }, 3))?.checkRunId, 3)
    assert.deepEqual(lastReported(mine, record({ at: "2026-12-01T11:00:00Z", digest: "r" }, 3)), {
      ...mine,
      checkRunId: 3
    })
    assert.equal(lastReported(mine, record({ at: "2026-12-01T13:00:00Z", digest: "r" }, 3))?.digest, "r")
  })
})

describe("commit statuses (token mode)", () => {
  const pending: CommitStatusView = { state: "pending", description: "Preparing", targetUrl: undefined }
  const sent = (s: CommitStatusView, ago: number): Sent => ({
    digest: digestOf(s),
    at: NOW - ago,
    status: s.state,
    checkRunId: undefined
  })
  const cases: ReadonlyArray<[string, Sent | undefined, CommitStatusView, string]> = [
    ["never sent: send", undefined, pending, "Send"],
    ["sent as it is: nothing", sent(pending, 10), pending, "Unchanged"],
    ["changed within the window: wait", sent(pending, 10), { ...pending, state: "success" }, "Wait"],
    ["changed after the window: send", sent(pending, 2_000), { ...pending, state: "success" }, "Send"]
  ]
  for (const [name, last, status, tag] of cases) {
    test(name, () => assert.equal(decideCommitStatus(status, last, 2_000, NOW)._tag, tag))
  }
})

describe("deployments", () => {
  const deployment = (over: Partial<DeploymentInput> = {}): DeploymentInput => ({
    app: "shop",
    deploy: { generation: 40, sha: SHA, state: "success", description: "3 of 3 nodes live", requestedBy: "ana" },
    mirrored: undefined,
    firstSeen: NOW - DEPLOYMENT_GRACE_MS,
    records: [],
    retired: new Set(),
    now: NOW,
    ...over
  })
  const ops = (input: DeploymentInput) =>
    decideDeployment(input).ops.map((op) => op._tag === "SetState" ? `SetState ${op.state}` : op._tag)

  const cases: ReadonlyArray<[string, Partial<DeploymentInput>, ReadonlyArray<string>]> = [
    ["a generation just seen waits for the deployment webhook to claim it", { firstSeen: NOW - 1 }, ["Wait"]],
    ["after the grace: create, then in_progress before the outcome", {}, [
      "Create",
      "SetState in_progress",
      "SetState success"
    ]],
    ["a deploy still running: create, then in_progress only", {
      deploy: { generation: 40, sha: SHA, state: "in_progress", description: "1 of 3", requestedBy: undefined }
    }, ["Create", "SetState in_progress"]],
    ["a Deployment the webhook made (no state yet): in_progress, then the outcome", {
      mirrored: { id: 5 }
    }, ["SetState in_progress", "SetState success"]],
    ["sent in_progress, now done: the outcome", { mirrored: { id: 5, state: "in_progress" } }, [
      "SetState success"
    ]],
    ["the outcome already sent: nothing", { mirrored: { id: 5, state: "success" } }, []],
    ["an older generation left in progress is retired, once", {
      mirrored: { id: 5, state: "success" },
      records: [
        { sha: SHA, repo: "acme/shop", installationId: 1, deployment: { generation: 30, id: 3, state: "in_progress" } },
        { sha: SHA, repo: "acme/shop", installationId: 1, deployment: { generation: 20, id: 2 } },
        { sha: SHA, repo: "acme/shop", installationId: 1, deployment: { generation: 10, id: 1, state: "success" } },
        { sha: SHA, repo: "acme/shop", installationId: 1, deployment: { generation: 25, id: 4 } },
        { sha: SHA, repo: "acme/shop", installationId: 1, deployment: { generation: 40, id: 5 } }
      ],
      retired: new Set([25])
    }, ["Retire", "Retire"]]
  ]
  for (const [name, input, expected] of cases) {
    test(name, () => assert.deepEqual(ops(deployment(input)), expected))
  }

  test("the wait ends at the grace; the first sighting is remembered only while none is mirrored", () => {
    const waiting = decideDeployment(deployment({ firstSeen: NOW - 1_000 }))
    assert.deepEqual(waiting, {
      ops: [{ _tag: "Wait", until: NOW + DEPLOYMENT_GRACE_MS - 1_000 }],
      firstSeen: NOW - 1_000
    })
    assert.equal(decideDeployment(deployment({ mirrored: { id: 5 } })).firstSeen, undefined)
  })

  test("the created Deployment says what it mirrors, and its payload marks it as Sacar's", () => {
    const [create, progress] = decideDeployment(deployment()).ops
    assert.deepEqual(create, {
      _tag: "Create",
      description: `sacar: shop aaaaaaa (generation 40, ana)`,
      payload: { sacar: { app: "shop", generation: 40, requestedBy: "ana" } }
    })
    assert.deepEqual(progress, { _tag: "SetState", state: "in_progress", description: "deploying" })
    assert.equal(isMirrorOf(create?._tag === "Create" ? create.payload : undefined, "shop", 40), true)
    assert.equal(isMirrorOf(JSON.stringify({ sacar: { app: "shop", generation: 40 } }), "shop", 40), true)
    assert.equal(isMirrorOf({ sacar: { app: "shop", generation: 39 } }, "shop", 40), false)
    assert.equal(isMirrorOf("not json", "shop", 40), false)
  })
})

describe("failures", () => {
  test("a failure backs off 2 s, doubling to a minute; the key is skipped until then", () => {
    const delays: Array<number> = []
    let failing: ReturnType<typeof afterFailure>["failing"] | undefined
    for (let i = 0; i < 8; i++) {
      const after = afterFailure(failing, false, NOW)
      assert.equal(after.report, "retry")
      assert.equal(after.wake, NOW + after.delayMs)
      delays.push(after.delayMs)
      failing = after.failing
    }
    assert.deepEqual(delays, [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000])
    assert.deepEqual(backingOff(failing, NOW + 59_999), { wake: NOW + 60_000 })
    assert.equal(backingOff(failing, NOW + 60_000), undefined)
    assert.equal(backingOff(undefined, NOW), undefined)
  })

  test("an error GitHub will always refuse is parked for an hour, said once, with no wake-up", () => {
    const first = afterFailure({ retryAt: NOW, count: 2, parked: false }, true, NOW)
    assert.deepEqual(first, {
      failing: { retryAt: NOW + 3_600_000, count: 3, parked: true },
      wake: undefined,
      report: "parked",
      delayMs: 3_600_000
    })
    assert.equal(afterFailure(first.failing, true, NOW + 3_600_000).report, "still parked")
    assert.deepEqual(backingOff(first.failing, NOW + 1), { wake: undefined })
  })

  test("the next look is the earliest time asked for that is not past", () => {
    assert.equal(nextLook([undefined, NOW + 5, NOW + 2, NOW - 10], NOW), NOW + 2)
    assert.equal(nextLook([NOW - 1, undefined], NOW), undefined)
    assert.equal(nextLook([NOW], NOW), NOW)
  })
})
