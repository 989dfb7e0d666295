// The leader's pruning decisions (report/pruning.ts), as pure functions: which failed
// releases and which GitHubRecords go, from one snapshot and a time. No Consul, no clock.
import * as Schema from "effect/Schema"
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { failedReleasesToPrune, recordExpiry } from "../../src/controller/report/pruning.ts"
import { releaseView } from "../../src/controller/report/release-view.ts"
import type { AppSnapshot } from "../../src/controller/report/snapshot.ts"
import type { CommitTarget } from "../../src/controller/report/targets.ts"
import { AppConfig } from "../../src/spec/documents.ts"
import type { NodeStatus, ReleaseStatus } from "../../src/spec/documents.ts"
import type { GitHubRecord } from "../../src/spec/github-record.ts"

const HOUR = 3_600_000
const NOW = Date.parse("2026-11-27T10:00:00Z")
const TTL = 72 * HOUR
const ago = (hours: number) => new Date(NOW - hours * HOUR).toISOString()
const A = "a".repeat(40)
const B = "b".repeat(40)

const config = (over: Record<string, unknown> = {}) =>
  Schema.decodeUnknownSync(AppConfig)({
    repo: "acme/shop",
    artifact: "file:///x/{sha}.tgz",
    nodes: ["web-*"],
    prepareTimeout: "15m",
    ...over
  })

const attempt = (phase: ReleaseStatus["phase"], finishedHoursAgo?: number): ReleaseStatus => ({
  phase,
  attempt: 1,
  steps: {},
  ...(finishedHoursAgo === undefined ? {} : { finishedAt: ago(finishedHoursAgo) })
})

interface Case {
  readonly name: string
  /** Release A's createdAt, hours ago (undefined: none). */
  readonly createdHoursAgo?: number | undefined
  /** What each node says of release A. */
  readonly nodes: Record<string, ReleaseStatus | undefined>
  readonly node?: Partial<NodeStatus>
  readonly record?: Partial<GitHubRecord>
  readonly deploy?: boolean
  readonly pin?: boolean
  readonly config?: Record<string, unknown>
  readonly pruned: boolean
}

const appOf = (c: Case): { app: AppSnapshot; nodes: Set<string> } => {
  const statuses = new Map<string, NodeStatus>(
    Object.entries(c.nodes).map(([node, release]) => [node, {
      node,
      updatedAt: ago(0),
      releases: release === undefined ? {} : { [A]: release },
      current: B,
      deploy: null,
      ...(node === "web-1" ? c.node : {})
    }])
  )
  return {
    nodes: new Set(Object.keys(c.nodes)),
    app: {
      app: "shop",
      config: config(c.config),
      releases: new Map([[A, {
        doc: c.createdHoursAgo === undefined ? {} : { createdAt: ago(c.createdHoursAgo) },
        createIndex: 5,
        modifyIndex: 5
      }]]),
      deploy: { doc: { sha: c.deploy ? A : B }, createIndex: 1, modifyIndex: 9, generation: 9 },
      statuses,
      lock: undefined,
      pin: c.pin ? { sha: A, by: "bob", reason: "rollback", at: ago(1) } : undefined,
      github: c.record === undefined ? new Map() : new Map([[A, {
        doc: { repo: "acme/shop", sha: A, createdAt: ago(100), ...c.record },
        createIndex: 6,
        modifyIndex: 6
      }]]),
      predeploy: new Map()
    }
  }
}

describe("failed releases: removed after SACAR_FAILED_RELEASE_TTL without activity", () => {
  const cases: ReadonlyArray<Case> = [
    {
      name: "failed on every node, nothing since 73h",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("failed", 73), "web-2": attempt("failed", 74) },
      pruned: true
    },
    {
      name: "failed on one node and ready on the other (the check run shows failure)",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("failed", 73), "web-2": attempt("ready", 79) },
      pruned: true
    },
    {
      name: "not ready within prepareTimeout (timed_out), no node time at all",
      createdHoursAgo: 73,
      nodes: { "web-1": attempt("install"), "web-2": undefined },
      pruned: true
    },
    {
      name: "failed, but a node finished its attempt 71h ago: inside the TTL",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("failed", 71), "web-2": attempt("failed", 75) },
      pruned: false
    },
    {
      name: "failed long ago, retried an hour ago (the retry rewrote createdAt)",
      createdHoursAgo: 1,
      nodes: { "web-1": attempt("failed", 90), "web-2": attempt("failed", 90) },
      pruned: false
    },
    {
      name: "failed, and its record was reported to an hour ago",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("failed", 73), "web-2": attempt("failed", 73) },
      record: { reported: { digest: "d", at: ago(1), status: "completed", conclusion: "failure" } },
      pruned: false
    },
    {
      name: "failed, and a deploy request was refused an hour ago",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("failed", 73), "web-2": attempt("failed", 73) },
      record: { refused: { reason: "locked", by: "alice", at: ago(1) } },
      pruned: false
    },
    {
      name: "failed, but the DeploySpec names it",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("failed", 73), "web-2": attempt("failed", 73) },
      deploy: true,
      pruned: false
    },
    {
      name: "failed, but pinned",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("failed", 73), "web-2": attempt("failed", 73) },
      pin: true,
      pruned: false
    },
    {
      name: "failed on web-2, live on web-1",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("ready", 79), "web-2": attempt("failed", 73) },
      node: { current: A },
      pruned: false
    },
    {
      name: "failed on web-2, web-1's previous release (rollback needs it)",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("ready", 79), "web-2": attempt("failed", 73) },
      node: { previous: A },
      pruned: false
    },
    {
      name: "still preparing within a long prepareTimeout",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("install"), "web-2": attempt("install") },
      config: { prepareTimeout: "100h" },
      pruned: false
    },
    {
      name: "ready everywhere (retention's business, not this rule's)",
      createdHoursAgo: 80,
      nodes: { "web-1": attempt("ready", 79), "web-2": attempt("ready", 79) },
      pruned: false
    },
    {
      name: "no expected node: a fleet that is away is no failure",
      createdHoursAgo: 80,
      nodes: {},
      pruned: false
    },
    {
      name: "failed, but no time is known at all",
      createdHoursAgo: undefined,
      nodes: { "web-1": attempt("failed"), "web-2": attempt("failed") },
      pruned: false
    }
  ]
  for (const c of cases) {
    test(`${c.pruned ? "removed" : "kept"}: ${c.name}`, () => {
      const { app, nodes } = appOf(c)
      assert.deepEqual(failedReleasesToPrune(app, nodes, NOW, TTL), c.pruned ? [A] : [])
    })
  }
})

const RECORD_TTL = 168 * HOUR

const target = (over: Partial<GitHubRecord>, hasRelease = false): CommitTarget => {
  const cfg = config()
  return {
    app: "shop",
    sha: A,
    config: cfg,
    record: { doc: { repo: "acme/shop", sha: A, createdAt: ago(400), ...over }, createIndex: 1, modifyIndex: 1 },
    input: {
      app: "shop",
      sha: A,
      config: cfg,
      branch: "main",
      hasRelease,
      release: releaseView(A, [], new Map()),
      startedAt: undefined,
      deploy: undefined,
      lock: undefined,
      pin: undefined,
      refused: undefined,
      autoDeployedAt: undefined,
      now: NOW,
      publicUrl: undefined,
      artifactWaitMs: 24 * HOUR
    }
  }
}

describe("GitHubRecords without a release: removed SACAR_RECORD_TTL after their last activity, once the run ended", () => {
  const neutral = (hoursAgo: number) => ({
    reported: { digest: "d", at: ago(hoursAgo), status: "completed", conclusion: "neutral" }
  })
  const cases: ReadonlyArray<
    {
      name: string
      record: Partial<GitHubRecord>
      hasRelease?: boolean
      runEnded?: boolean
      expiry: number | undefined
    }
  > = [
    { name: "run ended neutral 169h ago", record: neutral(169), expiry: NOW - HOUR },
    {
      name: "recorded 400h ago, but its run ended only an hour ago (measured from activity, not createdAt)",
      record: neutral(1),
      expiry: NOW - HOUR + RECORD_TTL
    },
    {
      name: "a refusal an hour ago is activity",
      record: { ...neutral(300), refused: { reason: "locked", by: "alice", at: ago(1) } },
      expiry: NOW - HOUR + RECORD_TTL
    },
    {
      name: "its run is still open (it is ended, neutral, first)",
      record: neutral(300),
      runEnded: false,
      expiry: undefined
    },
    {
      name: "the commit has a release (retention's business)",
      record: neutral(300),
      hasRelease: true,
      expiry: undefined
    },
    {
      name: "it mirrors a GitHub Deployment",
      record: { ...neutral(300), deployment: { generation: 3, id: 9 } },
      expiry: undefined
    }
  ]
  for (const c of cases) {
    test(`${c.expiry === undefined ? "kept" : "expires"}: ${c.name}`, () => {
      assert.equal(recordExpiry(target(c.record, c.hasRelease ?? false), c.runEnded ?? true, RECORD_TTL), c.expiry)
    })
  }
})
