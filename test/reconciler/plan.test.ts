// The reconciler's decisions, as a pure function: no Consul, no disk, no clock.
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { frozenBy, HALTED_PREFIX, haltReason, KEEP_FAILED_LOGS, plan } from "../../src/reconciler/plan.ts"
import type {
  Action,
  AppDesired,
  AppObserved,
  DiskRelease,
  NodeDesired,
  WantedRelease
} from "../../src/reconciler/plan.ts"
import type { AppConfig, NodeStatus, ReleaseStatus } from "../../src/spec/documents.ts"

const sha = (c: string) => c.repeat(40)
const A = sha("a")
const B = sha("b")
const C = sha("c")
const D = sha("d")

const config = (over: Partial<AppConfig> = {}): AppConfig => ({
  branch: "main",
  artifact: "file:///builds/{sha}.tgz",
  nodes: ["*"],
  autoDeploy: false,
  keepReleases: 5,
  maxParallel: 1,
  prepareTimeout: "15m",
  deployTimeout: "5m",
  environment: "production",
  githubDeployments: false,
  ...over
})

const spec = (s: string, specIndex: number, createdAt?: string): WantedRelease => ({
  sha: s,
  specIndex,
  spec: createdAt === undefined ? {} : { createdAt }
})

const desiredApp = (over: Partial<AppDesired> = {}): AppDesired => ({
  app: "shop",
  config: config(),
  configPresent: true,
  errors: [],
  releases: new Map(),
  deploy: undefined,
  ...over
})

const releasesOf = (...rs: WantedRelease[]) => new Map(rs.map((r) => [r.sha, r]))

const status = (over: Partial<NodeStatus> = {}): NodeStatus => ({
  node: "web-1",
  updatedAt: "2026-11-27T10:00:00Z",
  releases: {},
  current: null,
  deploy: null,
  ...over
})

const rs = (phase: ReleaseStatus["phase"], specIndex: number, attempt = 1, message?: string): ReleaseStatus => ({
  phase,
  specIndex,
  attempt,
  steps: {},
  ...(message === undefined ? {} : { message })
})

const observedApp = (over: Partial<AppObserved> = {}): AppObserved => ({
  disk: { releases: new Map(), current: null, previous: null },
  status: status(),
  preparing: new Map(),
  deploying: undefined,
  ...over
})

const disk = (ready: string[], opts: { current?: string; previous?: string; partial?: string[] } = {}) => ({
  releases: new Map<string, DiskRelease>([
    ...ready.map((s) => [s, { ready: true }] as const),
    ...(opts.partial ?? []).map((s) => [s, { ready: false }] as const)
  ]),
  current: opts.current ?? null,
  previous: opts.previous ?? null
})

const NOW = Date.parse("2026-12-01T12:00:00Z")

const node = (apps: Record<string, AppDesired>, concurrency = 2, name = "web-1"): NodeDesired => ({
  node: name,
  concurrency,
  apps: new Map(Object.entries(apps)),
  now: NOW
})

const run = (desired: NodeDesired, apps: Record<string, AppObserved>) =>
  plan(desired, { apps: new Map(Object.entries(apps)) })

const tags = (actions: ReadonlyArray<Action>) => actions.map((a) => `${a._tag}${"sha" in a ? ` ${a.sha[0]}` : ""}`)

describe("serving apps", () => {
  test("an app whose nodes globs match is served; others are not", () => {
    const actions = run(
      node({ shop: desiredApp(), blog: desiredApp({ app: "blog", config: config({ nodes: ["db-*"] }) }) }),
      {}
    )
    assert.deepEqual(actions, [{ _tag: "Serve", app: "shop" }])
  })

  test("an app whose config is deleted or no longer names the node is unserved", () => {
    const actions = run(node({ blog: desiredApp({ app: "blog", config: config({ nodes: ["db-*"] }) }) }), {
      shop: observedApp(),
      blog: observedApp()
    })
    assert.deepEqual(tags(actions), ["Unserve", "Unserve"])
    assert.match((actions[0] as { reason: string }).reason, /no AppConfig/)
    assert.match((actions[1] as { reason: string }).reason, /no longer match web-1/)
  })

  test("an AppConfig that never decoded is reported, and nothing else is done", () => {
    const bad = desiredApp({ config: undefined, errors: ["sacar/shop/config: bad"], releases: releasesOf(spec(A, 5)) })
    assert.deepEqual(run(node({ shop: bad }), {}), [{ _tag: "Serve", app: "shop" }])
    assert.deepEqual(run(node({ shop: bad }), { shop: observedApp() }), [{
      _tag: "SetError",
      app: "shop",
      error: "sacar/shop/config: bad"
    }])
  })

  test("a bad AppConfig after a good one: the error is reported and releases are still acted on", () => {
    const app = desiredApp({
      errors: ["sacar/shop/config: field \"maxParallel\" ..."],
      releases: releasesOf(spec(A, 5))
    })
    assert.deepEqual(tags(run(node({ shop: app }), { shop: observedApp() })), ["SetError", "Prepare a"])
  })

  test("the error is cleared once the config decodes again", () => {
    const actions = run(node({ shop: desiredApp() }), { shop: observedApp({ status: status({ error: "old" }) }) })
    assert.deepEqual(actions, [{ _tag: "SetError", app: "shop", error: undefined }])
  })
})

describe("preparing releases", () => {
  test("a new ReleaseSpec is prepared, attempt 1", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 7)) }) }), { shop: observedApp() })
    assert.deepEqual(actions, [{ _tag: "Prepare", app: "shop", sha: A, specIndex: 7, attempt: 1, spec: {} }])
  })

  test("a ready release is never touched again, even when its spec is rewritten", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 9)) }) }), {
      shop: observedApp({ disk: disk([A]), status: status({ releases: { [A]: rs("ready", 7) } }) })
    })
    assert.deepEqual(actions, [])
  })

  test("ready on disk but not in the status: adopted without running anything", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 7)) }) }), {
      shop: observedApp({ disk: disk([A]) })
    })
    assert.deepEqual(actions, [{ _tag: "AdoptReady", app: "shop", sha: A, specIndex: 7 }])
  })

  test("a failed release with the same spec index is not tried again (its files go)", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 7)) }) }), {
      shop: observedApp({ disk: disk([], { partial: [A] }), status: status({ releases: { [A]: rs("failed", 7, 2) } }) })
    })
    assert.deepEqual(tags(actions), ["RemoveRelease a"])
  })

  test("a failed release whose spec was rewritten is retried with the next attempt", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 8)) }) }), {
      shop: observedApp({ status: status({ releases: { [A]: rs("failed", 7, 2) } }) })
    })
    assert.deepEqual(actions, [{ _tag: "Prepare", app: "shop", sha: A, specIndex: 8, attempt: 3, spec: {} }])
  })

  test("a preparation interrupted by a crash continues with the same attempt", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 7)) }) }), {
      shop: observedApp({
        disk: disk([], { partial: [A] }),
        status: status({ releases: { [A]: rs("install", 7, 1) } })
      })
    })
    assert.deepEqual(actions, [{ _tag: "Prepare", app: "shop", sha: A, specIndex: 7, attempt: 1, spec: {} }])
  })

  test("a release being prepared is not started twice", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 7)) }) }), {
      shop: observedApp({
        preparing: new Map([[A, { specIndex: 7, cancelling: false }]]),
        status: status({ releases: { [A]: rs("install", 7) } })
      })
    })
    assert.deepEqual(actions, [])
  })

  test("a ReleaseSpec that does not decode fails the release with the message naming the key", () => {
    const bad: WantedRelease = {
      sha: A,
      specIndex: 4,
      spec: undefined,
      specError: `sacar/shop/releases/${A}: not valid JSON`
    }
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(bad) }) }), { shop: observedApp() })
    assert.deepEqual(actions, [{
      _tag: "FailRelease",
      app: "shop",
      sha: A,
      specIndex: 4,
      attempt: 1,
      message: bad.specError
    }])
    const again = run(node({ shop: desiredApp({ releases: releasesOf(bad) }) }), {
      shop: observedApp({ status: status({ releases: { [A]: rs("failed", 4, 1, bad.specError) } }) })
    })
    assert.deepEqual(again, [])
  })

  test("newest first (createdAt, else ModifyIndex), at most `concurrency` at once across apps", () => {
    const shop = desiredApp({
      releases: releasesOf(
        spec(A, 10, "2026-11-27T10:00:00Z"),
        spec(B, 11, "2026-11-27T09:00:00Z"),
        spec(C, 12, "2026-11-27T11:00:00Z")
      )
    })
    const blog = desiredApp({ app: "blog", releases: releasesOf(spec(D, 3)) })
    const actions = run(node({ shop, blog }, 2), { shop: observedApp(), blog: observedApp() })
    assert.deepEqual(tags(actions), ["Prepare c", "Prepare a", "Queue b", "Queue d"])
  })

  test("slots taken by work in flight count against the limit", () => {
    const shop = desiredApp({ releases: releasesOf(spec(A, 10), spec(B, 11)) })
    const actions = run(node({ shop }, 2), {
      shop: observedApp({
        preparing: new Map([[A, { specIndex: 10, cancelling: false }]]),
        status: status({ releases: { [A]: rs("download", 10) } })
      })
    })
    assert.deepEqual(tags(actions), ["Prepare b"])
  })

  test("a queued release already shown as pending is not re-queued", () => {
    const shop = desiredApp({ releases: releasesOf(spec(A, 10)) })
    const actions = run(node({ shop }, 0), {
      shop: observedApp({ status: status({ releases: { [A]: rs("pending", 10) } }) })
    })
    assert.deepEqual(actions, [])
  })
})

describe("cancelling and retention", () => {
  test("a spec deleted while preparing: cancel (which removes the directory)", () => {
    const actions = run(node({ shop: desiredApp() }), {
      shop: observedApp({
        disk: disk([], { partial: [A] }),
        preparing: new Map([[A, { specIndex: 7, cancelling: false }]]),
        status: status({ releases: { [A]: rs("install", 7) } })
      })
    })
    assert.deepEqual(tags(actions), ["Cancel a"])
  })

  test("a cancellation in progress is not asked for again", () => {
    const actions = run(node({ shop: desiredApp() }), {
      shop: observedApp({ preparing: new Map([[A, { specIndex: 7, cancelling: true }]]) })
    })
    assert.deepEqual(actions, [])
  })

  test("releases no longer wanted are removed, except current and previous", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(D, 20)) }) }), {
      shop: observedApp({
        disk: disk([A, B, C, D], { current: B, previous: A }),
        status: status({
          current: B,
          previous: A,
          releases: { [A]: rs("ready", 1), [B]: rs("ready", 2), [C]: rs("ready", 3), [D]: rs("ready", 20) }
        })
      })
    })
    assert.deepEqual(tags(actions), ["RemoveRelease c", "ForgetRelease c"])
  })

  test("a failed release whose spec is deleted is removed from disk and from the status", () => {
    const actions = run(node({ shop: desiredApp() }), {
      shop: observedApp({ disk: disk([], { partial: [A] }), status: status({ releases: { [A]: rs("failed", 7) } }) })
    })
    assert.deepEqual(tags(actions), ["RemoveRelease a", "ForgetRelease a"])
  })

  test("the links on disk are mirrored into the status", () => {
    const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 1), spec(B, 2)) }) }), {
      shop: observedApp({
        disk: disk([A, B], { current: B, previous: A }),
        status: status({ releases: { [A]: rs("ready", 1), [B]: rs("ready", 2) } })
      })
    })
    assert.deepEqual(actions, [{ _tag: "SetLinks", app: "shop", current: B, previous: A }])
  })
})

describe("deploys", () => {
  const deploying = (generation: number, s: string) => ({ generation, sha: s })

  test("a new generation whose release is ready starts a deploy", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 1)), deploy: deploying(50, A) })
    const actions = run(node({ shop: app }), {
      shop: observedApp({ disk: disk([A]), status: status({ releases: { [A]: rs("ready", 1) } }) })
    })
    assert.deepEqual(actions, [{ _tag: "StartDeploy", app: "shop", generation: 50, sha: A }])
  })

  test("a deploy of a sha without a ReleaseSpec prepares it first and waits", () => {
    const app = desiredApp({ deploy: deploying(50, A) })
    const actions = run(node({ shop: app }), { shop: observedApp() })
    assert.deepEqual(tags(actions), ["DeployWaiting a", "Prepare a"])
    assert.deepEqual(actions[1], { _tag: "Prepare", app: "shop", sha: A, specIndex: 50, attempt: 1, spec: {} })
  })

  test("the deploy target is prepared before newer releases", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 1), spec(B, 60), spec(C, 61)), deploy: deploying(50, A) })
    const actions = run(node({ shop: app }, 1), { shop: observedApp() })
    assert.deepEqual(tags(actions), ["DeployWaiting a", "Prepare a", "Queue c", "Queue b"])
  })

  test("a generation already live or failed is done; a redeploy (new generation) runs again", () => {
    const ready = { disk: disk([A], { current: A }), status: status({ current: A, releases: { [A]: rs("ready", 1) } }) }
    for (const phase of ["live", "failed"] as const) {
      const done = status({ ...ready.status, deploy: { generation: 50, sha: A, phase } })
      assert.deepEqual(
        run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 1)), deploy: deploying(50, A) }) }), {
          shop: observedApp({ ...ready, status: done })
        }),
        []
      )
      assert.deepEqual(
        run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 1)), deploy: deploying(51, A) }) }), {
          shop: observedApp({ ...ready, status: done })
        }),
        [{ _tag: "StartDeploy", app: "shop", generation: 51, sha: A }]
      )
    }
  })

  test("a generation interrupted by a crash (status still deploying) runs again", () => {
    for (const phase of ["waiting", "predeploy", "deploying"] as const) {
      const st = status({ releases: { [A]: rs("ready", 1) }, deploy: { generation: 50, sha: A, phase } })
      const actions = run(node({ shop: desiredApp({ releases: releasesOf(spec(A, 1)), deploy: deploying(50, A) }) }), {
        shop: observedApp({ disk: disk([A]), status: st })
      })
      assert.deepEqual(actions, [{ _tag: "StartDeploy", app: "shop", generation: 50, sha: A }])
    }
  })

  test("a deploy in flight is left alone; a newer generation cancels it first", () => {
    const base = { disk: disk([A, B]), status: status({ releases: { [A]: rs("ready", 1), [B]: rs("ready", 2) } }) }
    const same = run(
      node({ shop: desiredApp({ releases: releasesOf(spec(A, 1), spec(B, 2)), deploy: deploying(50, A) }) }),
      {
        shop: observedApp({ ...base, deploying: deploying(50, A) })
      }
    )
    assert.deepEqual(same, [])
    const newer = run(
      node({ shop: desiredApp({ releases: releasesOf(spec(A, 1), spec(B, 2)), deploy: deploying(51, B) }) }),
      {
        shop: observedApp({ ...base, deploying: deploying(50, A) })
      }
    )
    assert.deepEqual(tags(newer), ["CancelDeploy"])
  })

  test("a superseded deploy being stopped is waited for: nothing starts until it is gone", () => {
    const base = { disk: disk([A, B]), status: status({ releases: { [A]: rs("ready", 1), [B]: rs("ready", 2) } }) }
    const actions = run(
      node({ shop: desiredApp({ releases: releasesOf(spec(A, 1), spec(B, 2)), deploy: deploying(51, B) }) }),
      { shop: observedApp({ ...base, deploying: { ...deploying(50, A), cancelling: true } }) }
    )
    assert.deepEqual(actions, [])
  })

  test("a deploy whose release failed to prepare fails, naming the release", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 1)), deploy: deploying(50, A) })
    const actions = run(node({ shop: app }), {
      shop: observedApp({ status: status({ releases: { [A]: rs("failed", 1, 1, "bin/prepare exited with code 3") } }) })
    })
    assert.equal(actions.length, 1)
    assert.equal(actions[0]!._tag, "FailDeploy")
    assert.match((actions[0] as { message: string }).message, /release aaaaaaa failed to prepare.*exited with code 3/)
  })

  test("the current release of a deploy target is kept on disk while deploying elsewhere", () => {
    const app = desiredApp({ releases: releasesOf(spec(B, 2)), deploy: deploying(51, B) })
    const actions = run(node({ shop: app }), {
      shop: observedApp({
        disk: disk([A, B]),
        status: status({ releases: { [B]: rs("ready", 2) } }),
        deploying: deploying(51, B)
      })
    })
    assert.deepEqual(tags(actions), ["RemoveRelease a"])
  })
})

describe("halting a rollout", () => {
  test("another node's failure of this generation halts, naming it", () => {
    const reason = haltReason("web-2", 50, [
      { node: "web-1", generation: 50, phase: "failed", message: "bin/deploy exited with code 1" },
      { node: "web-3", generation: 50, phase: "live" }
    ])
    assert.equal(reason, `${HALTED_PREFIX}web-1 failed: bin/deploy exited with code 1`)
  })

  test("failures of other generations, and this node's own, do not halt", () => {
    assert.equal(haltReason("web-2", 51, [{ node: "web-1", generation: 50, phase: "failed", message: "x" }]), undefined)
    assert.equal(haltReason("web-2", 50, [{ node: "web-2", generation: 50, phase: "failed", message: "x" }]), undefined)
    assert.equal(haltReason("web-2", 50, [{ node: "web-1", generation: 50, phase: "deploying" }]), undefined)
  })

  test("a halted node's status points at the root cause, not at itself", () => {
    const reason = haltReason("web-3", 50, [
      { node: "web-2", generation: 50, phase: "failed", message: `${HALTED_PREFIX}web-1 failed: boom` }
    ])
    assert.equal(reason, `${HALTED_PREFIX}web-1 failed: boom`)
  })
})

describe("serving an app again", () => {
  test("a node that serves an app again does not redeploy what is already live in its current", () => {
    // `--nodes ''` then the old list: the node unserved the app (its status withdrawn)
    // and serves it again with the target's release still live in `current`.
    const app = desiredApp({ releases: releasesOf(spec(A, 1)), deploy: { generation: 50, sha: A } })
    const actions = run(node({ shop: app }), {
      shop: observedApp({ disk: disk([A], { current: A }), status: status({ releases: { [A]: rs("ready", 1) } }) })
    })
    assert.deepEqual(actions.filter((a) => a._tag !== "SetLinks"), [
      { _tag: "AdoptLive", app: "shop", generation: 50, sha: A }
    ])
  })

  test("a node without a record whose current is another release deploys the target", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 1), spec(B, 2)), deploy: { generation: 50, sha: A } })
    const actions = run(node({ shop: app }), {
      shop: observedApp({
        disk: disk([A, B], { current: B }),
        status: status({ releases: { [A]: rs("ready", 1), [B]: rs("ready", 2) } })
      })
    })
    assert.deepEqual(actions.filter((a) => a._tag !== "SetLinks"), [
      { _tag: "StartDeploy", app: "shop", generation: 50, sha: A }
    ])
  })
})

describe("a freeze", () => {
  const lock = (until?: string) => ({
    doc: { by: "alice", reason: "black friday", at: "2026-12-01T09:00:00Z", ...(until === undefined ? {} : { until }) }
  })

  test("the plan starts a deploy whatever the lock: the deploy reads the lock itself (the node does not watch it)", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 1)), deploy: { generation: 50, sha: A } })
    const ready = observedApp({ disk: disk([A]), status: status({ releases: { [A]: rs("ready", 1) } }) })
    assert.deepEqual(run(node({ shop: app }), { shop: ready }), [{
      _tag: "StartDeploy",
      app: "shop",
      generation: 50,
      sha: A
    }])
  })

  test("a lock holds a deploy and says who locked it and why", () => {
    assert.match(frozenBy(lock(), false, NOW) ?? "", /^locked by alice: black friday; waiting/)
  })

  test("no lock, or a forced DeploySpec, goes on", () => {
    assert.equal(frozenBy(undefined, false, NOW), undefined)
    assert.equal(frozenBy(lock(), true, NOW), undefined)
  })

  test("a lock past its end no longer holds; one still ahead does", () => {
    assert.equal(frozenBy(lock("2026-12-01T11:00:00Z"), false, NOW), undefined)
    assert.match(frozenBy(lock("2026-12-01T13:00:00Z"), false, NOW) ?? "", /until 2026-12-01T13:00:00Z/)
  })

  test("a lock that does not decode holds, naming the problem", () => {
    assert.match(frozenBy({ unreadable: "sacar/shop/lock: reason is missing" }, false, NOW) ?? "", /reason is missing/)
  })
})

describe("releases waiting to try again", () => {
  test("one waiting holds no slot: another release is prepared meanwhile, and it is prepared again when its time comes", () => {
    const app = desiredApp({
      releases: releasesOf(spec(A, 1, "2026-12-01T10:00:00Z"), spec(B, 2, "2026-12-01T09:00:00Z"))
    })
    const observed = (at: number) =>
      observedApp({
        status: status({ releases: { [A]: rs("download", 1, 1, "GET failed: 503; trying again in 10s") } }),
        retrying: new Map([[A, { specIndex: 1, at }]])
      })
    assert.deepEqual(tags(run(node({ shop: app }, 1), { shop: observed(NOW + 10_000) })), ["Prepare b"])
    const due = run(node({ shop: app }, 1), { shop: observed(NOW - 1) })
    assert.deepEqual(tags(due), ["Prepare a", "Queue b"])
    assert.equal((due[0] as Extract<Action, { _tag: "Prepare" }>).attempt, 1)
  })

  test("a rewritten spec does not wait", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 7)) })
    const actions = run(node({ shop: app }, 1), {
      shop: observedApp({
        status: status({ releases: { [A]: rs("download", 1) } }),
        retrying: new Map([[A, { specIndex: 1, at: NOW + 60_000 }]])
      })
    })
    assert.deepEqual(tags(actions), ["Prepare a"])
  })
})

describe("bounded disk and status", () => {
  test("a release failed for good loses its files but keeps its entry, so it is not tried again", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 1), spec(B, 2)) })
    const actions = run(node({ shop: app }), {
      shop: observedApp({
        disk: disk([B], { current: B, partial: [A] }),
        status: status({ releases: { [A]: rs("failed", 1), [B]: rs("ready", 2) }, current: B })
      })
    })
    assert.deepEqual(tags(actions), ["RemoveRelease a"])
  })

  test("a failed release that is current or previous keeps its files", () => {
    const app = desiredApp({ releases: releasesOf(spec(A, 1)) })
    const actions = run(node({ shop: app }), {
      shop: observedApp({
        disk: disk([], { current: A, partial: [A] }),
        status: status({ releases: { [A]: rs("failed", 1) }, current: A })
      })
    })
    assert.deepEqual(tags(actions), [])
  })

  test("only the newest failures keep their log tail in the status", () => {
    const shas = Array.from({ length: 8 }, (_, i) => String(i).repeat(40))
    const releases: Record<string, ReleaseStatus> = {}
    shas.forEach((s, i) => {
      releases[s] = { ...rs("failed", i + 1), log: "x".repeat(4096), finishedAt: `2026-12-01T10:0${i}:00Z` }
    })
    const app = desiredApp({ releases: releasesOf(...shas.map((s, i) => spec(s, i + 1))) })
    const actions = run(node({ shop: app }), { shop: observedApp({ status: status({ releases }) }) })
    const drop = actions.find((a) => a._tag === "CompactFailures")
    assert.ok(drop?._tag === "CompactFailures", JSON.stringify(actions))
    assert.deepEqual([...drop.shas].sort(), shas.slice(0, 8 - KEEP_FAILED_LOGS).sort())
  })
})
