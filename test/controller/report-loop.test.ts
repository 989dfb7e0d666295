// The reporter against dev-consul (or a real Consul) and the fake GitHub, in-process,
// with simulated nodes (registrations + NodeStatus writes, no reconcilers).
import assert from "node:assert/strict"
import { test } from "node:test"
import { DEFAULT_PRUNING } from "../../src/controller/report/pruning.ts"
import { randomPrefix, startConsul } from "../support/consul.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { startFakeGitHub } from "../support/fake-github/index.ts"
import type { FakeGitHub } from "../support/fake-github/index.ts"
import { examplePayload, sendWebhook } from "../support/fake-github/index.ts"
import { appKeyPair, FAST_TUNING, startReporter } from "../support/reporter.ts"
import type { ReporterSetup } from "../support/reporter.ts"
import { prepareOn, registerNode } from "../support/simulated-nodes.ts"
import type { SimulatedNode } from "../support/simulated-nodes.ts"
import { controllerEnv, getJson, listPrefix, putKv, randomSha, startController } from "./harness.ts"

const REPO = "acme/shop"
const SECRET = "webhook-secret-for-tests"
const keyPair = appKeyPair()

interface World {
  consul: string
  prefix: string
  github: FakeGitHub
  nodes: SimulatedNode[]
  start(extra?: Partial<ReporterSetup>): ReturnType<typeof startReporter>
}

const world = async (
  t: { after: (fn: () => Promise<void> | void) => void },
  nodeNames: string[],
  options: { token?: boolean } = {}
): Promise<World> => {
  const consul = await startConsul()
  t.after(() => consul.close())
  const github = await startFakeGitHub(
    options.token ? { token: "ghp_test" } : { app: { appId: "4242", publicKey: keyPair.publicKeyPem } }
  )
  t.after(() => github.close())
  const prefix = randomPrefix()
  const nodes: SimulatedNode[] = []
  for (const n of nodeNames) nodes.push(await registerNode(consul.addr, prefix, n))
  t.after(async () => {
    for (const n of nodes) await n.stop()
  })
  return {
    consul: consul.addr,
    prefix,
    github,
    nodes,
    start: (extra = {}) => {
      const r = startReporter({
        consul: consul.addr,
        prefix,
        github: options.token
          ? { url: github.url, token: "ghp_test", tuning: FAST_TUNING }
          : { url: github.url, appId: "4242", privateKeyPem: keyPair.privateKeyPem, tuning: FAST_TUNING },
        ...extra
      })
      t.after(() => r.stop())
      return r
    }
  }
}

const appConfig = (extra: Record<string, unknown> = {}) => ({
  repo: REPO,
  branch: "main",
  artifact: "file:///srv/{app}/{sha}.tgz",
  nodes: ["web-*"],
  ...extra
})
const record = (sha: string, branch = "main") => ({
  repo: REPO,
  sha,
  branch,
  ref: `refs/heads/${branch}`,
  installationId: 1,
  createdAt: new Date().toISOString()
})
const runsOf = (gh: FakeGitHub, sha: string) => gh.checkRuns().filter((r) => r.head_sha === sha)
const onlyRun = (gh: FakeGitHub, sha: string) => {
  const runs = runsOf(gh, sha)
  return runs.length === 1 ? runs[0] : undefined
}

test("a release walks from queued to ready, then a deploy to live, mirrored to one check run and one Deployment", async (t) => {
  const w = await world(t, ["web-1", "web-2"])
  const sha = randomSha()
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, record(sha))
  const running = w.start({ publicUrl: "https://sacar.example" })

  const queued = await eventually("a queued check run", () => onlyRun(w.github, sha))
  assert.equal(queued.name, "sacar/shop")
  assert.equal(queued.status, "queued")
  assert.equal(queued.output.title, "Waiting for build artifact")
  assert.equal(queued.details_url, "https://sacar.example/v1/apps/shop")

  await putKv(w.consul, `${w.prefix}/shop/releases/${sha}`, {
    createdAt: new Date().toISOString(),
    ref: "refs/heads/main"
  })
  await prepareOn(w.nodes[0]!, "shop", sha, 100)
  await eventually("1 of 2 nodes ready", () => onlyRun(w.github, sha)?.output.title === "1 of 2 nodes ready")
  await prepareOn(w.nodes[1]!, "shop", sha, 100)
  const ready = await eventually("a successful check run", () => {
    const r = onlyRun(w.github, sha)
    return r?.conclusion === "success" ? r : undefined
  })
  assert.equal(ready.output.title, "Ready to deploy: 2 of 2 nodes ready")
  assert.deepEqual(ready.actions.map((a) => a.identifier), ["deploy"])
  assert.match(ready.output.summary ?? "", /\| web-2 \| ready \|/)

  await putKv(w.consul, `${w.prefix}/shop/deploy`, { sha, requestedBy: "octocat" })
  const generation = (await listPrefix(w.consul, w.prefix)).get(`${w.prefix}/shop/deploy`)!.modifyIndex
  for (const n of w.nodes) await n.status("shop", { deploy: { generation, sha, phase: "deploying" } })
  const deployment = await eventually("a deployment in progress", () => {
    const d = w.github.deployments().find((x) => x.sha === sha)
    return d?.statuses.length ? d : undefined
  })
  assert.equal(deployment.environment, "production")
  assert.equal(deployment.statuses[0]!.state, "in_progress")
  for (const n of w.nodes) await n.status("shop", { current: sha, deploy: { generation, sha, phase: "live" } })
  await eventually(
    "deployment success",
    () => w.github.deployments().find((x) => x.sha === sha)?.statuses.at(-1)?.state === "success"
  )
  await eventually("the check run says live", () => onlyRun(w.github, sha)?.output.title === "Live on 2 of 2 nodes")

  assert.equal(w.github.deployments().length, 1)
  assert.deepEqual(w.github.deployments()[0]!.statuses.map((s) => s.state), ["in_progress", "success"])
  assert.equal(runsOf(w.github, sha).length, 1)
  // The record is written after GitHub answered, so it may trail what the fake saw.
  const stored = await eventually("the record notes the deployment's success", async () => {
    const record = await getJson(w.consul, `${w.prefix}/shop/github/${sha}`)
    return record?.deployment?.state === "success" ? record : undefined
  })
  assert.equal(stored.checkRunId, ready.id)
  assert.equal(stored.reported.status, "completed")
  assert.deepEqual(stored.deployment, { generation, id: deployment.id, state: "success" })
  assert.deepEqual(w.github.violations, [])
  assert.ok(running.metrics.get("sacar_github_requests_total", { operation: "createCheckRun", status: "201" }) === 1)
  assert.equal(running.metrics.get("sacar_leader"), 1)
})

test("a commit whose artifact never comes: queued, neutral after SACAR_ARTIFACT_WAIT, its record pruned SACAR_RECORD_TTL after that", async (t) => {
  const w = await world(t, ["web-1"])
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  const running = w.start({
    pruning: { ...DEFAULT_PRUNING, artifactWaitMs: 3_000, recordTtlMs: 2_000 }
  })
  await eventually("leadership", () => running.metrics.get("sacar_leader") === 1)
  const sha = randomSha()
  const key = `${w.prefix}/shop/github/${sha}`
  await putKv(w.consul, key, record(sha))

  const neutral = await eventually("the run ends neutral", () => {
    const r = onlyRun(w.github, sha)
    return r?.conclusion === "neutral" ? r : undefined
  })
  const endedAt = Date.now()
  assert.equal(neutral.output.title, "No build artifact arrived")
  await eventually("the record is pruned", async () => (await getJson(w.consul, key)) === undefined, 20_000)
  assert.ok(Date.now() - endedAt >= 1_000, "pruned a record TTL after the run ended, not at once")
  const run = onlyRun(w.github, sha)!
  assert.deepEqual(
    run.history.map((h) => [h.body["status"], h.body["conclusion"]]),
    [["queued", undefined], ["completed", "neutral"]],
    "one run: created queued, then completed neutral; nothing after"
  )
  assert.deepEqual(w.github.violations, [])
})

test("a failed node and a halted deploy are named in the check run and the deployment status", async (t) => {
  const w = await world(t, ["web-1", "web-2"])
  const sha = randomSha()
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, record(sha))
  await putKv(w.consul, `${w.prefix}/shop/releases/${sha}`, { createdAt: new Date().toISOString() })
  w.start()
  await prepareOn(w.nodes[0]!, "shop", sha)
  await w.nodes[1]!.status("shop", {
    releases: {
      [sha]: {
        phase: "failed",
        message: "install: pip exited with status 1",
        steps: { download: { ms: 5 } },
        log: "ERROR: No matching distribution found for flask==99"
      }
    }
  })
  const failed = await eventually("a failed check run", () => {
    const r = onlyRun(w.github, sha)
    return r?.conclusion === "failure" ? r : undefined
  })
  assert.equal(failed.output.title, "Failed on web-2 at install")
  assert.match(failed.output.text ?? "", /No matching distribution found for flask==99/)

  // Retried and ready: a completed run cannot go back to in progress, so progress is a new run.
  await prepareOn(w.nodes[1]!, "shop", sha)
  await eventually("a successful run", () => runsOf(w.github, sha).some((r) => r.conclusion === "success"))

  await putKv(w.consul, `${w.prefix}/shop/deploy`, { sha, requestedBy: "octocat" })
  const generation = (await listPrefix(w.consul, w.prefix)).get(`${w.prefix}/shop/deploy`)!.modifyIndex
  await w.nodes[0]!.status("shop", { deploy: { generation, sha, phase: "live" } })
  await w.nodes[1]!.status("shop", {
    deploy: { generation, sha, phase: "failed", message: "bin/deploy exited with status 3" }
  })
  const statuses = await eventually("deployment failure", () => {
    const d = w.github.deployments().find((x) => x.sha === sha)
    return d?.statuses.at(-1)?.state === "failure" ? d.statuses : undefined
  })
  assert.equal(statuses.at(-1)!.description, "web-2 failed: bin/deploy exited with status 3")
  await eventually(
    "the check run names the halted deploy",
    () => runsOf(w.github, sha).at(-1)?.output.title === "Deploy failed on web-2"
  )
  assert.deepEqual(w.github.violations, [])
})

test("coalescing: a burst of node changes becomes at most one update per 2 seconds", async (t) => {
  const names = Array.from({ length: 20 }, (_, i) => `web-${i + 1}`)
  const w = await world(t, names)
  const sha = randomSha()
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, record(sha))
  await putKv(w.consul, `${w.prefix}/shop/releases/${sha}`, { createdAt: new Date().toISOString() })
  w.start()
  await eventually("a check run", () => onlyRun(w.github, sha))
  const started = Date.now()
  // Node changes keep arriving for about 8 s: 20 nodes x 8 status writes, staggered.
  await Promise.all(w.nodes.map((n, i) => sleep(i * 300).then(() => prepareOn(n, "shop", sha, 100))))
  await eventually("success", () => onlyRun(w.github, sha)?.conclusion === "success")
  const elapsed = Date.now() - started
  const run = onlyRun(w.github, sha)!
  const updates = run.history.filter((h) => h.operation === "update").length
  // 20 nodes x 8 status writes each; without coalescing that would be up to 160 updates.
  assert.ok(updates <= Math.ceil(elapsed / 2000) + 2, `${updates} updates in ${elapsed} ms`)
  // At least one progress update before the final one (the window widens as the release
  // ages, pacing.ts, so how many fit in the burst depends on how fast the machine is).
  assert.ok(updates >= 2, `progress was shown while nodes changed (${updates} updates in ${elapsed} ms)`)
  // Progress is coalesced; a change of phase (status, conclusion, buttons) is sent at once.
  const phase = (b: Record<string, unknown>) =>
    JSON.stringify([
      b["status"],
      b["conclusion"],
      (b["actions"] as Array<{ identifier: string }> | undefined)?.map((a) => a.identifier)
    ])
  const sent = w.github.requests.filter((r) => r.operationId === "checks/update")
  for (let i = 1; i < sent.length; i++) {
    const [a, b] = [sent[i - 1]!, sent[i]!]
    if (phase(a.body as Record<string, unknown>) !== phase(b.body as Record<string, unknown>)) continue
    assert.ok(b.at - a.at >= 1900, `progress updates ${b.at - a.at} ms apart`)
  }
})

test("token mode: one commit status per app, context sacar/<app>, no check runs", async (t) => {
  const w = await world(t, ["web-1"], { token: true })
  const sha = randomSha()
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, {
    repo: REPO,
    sha,
    branch: "main",
    createdAt: new Date().toISOString()
  })
  await putKv(w.consul, `${w.prefix}/shop/releases/${sha}`, { createdAt: new Date().toISOString() })
  w.start()
  await prepareOn(w.nodes[0]!, "shop", sha)
  const last = await eventually("a success status", () => {
    const s = w.github.commitStatuses().filter((x) => x.sha === sha).at(-1)
    return s?.state === "success" ? s : undefined
  })
  assert.equal(last.context, "sacar/shop")
  assert.equal(last.description, "Ready to deploy: 1 of 1 nodes ready")
  assert.equal(w.github.checkRuns().length, 0)
  assert.deepEqual(w.github.violations, [])
})

test("GitHub failures: 500s and a secondary rate limit with Retry-After are retried and the run converges", async (t) => {
  const w = await world(t, ["web-1"])
  const sha = randomSha()
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, record(sha))
  // More 500s than one request's retries (FAST_TUNING: 2), so the loop's own retry is exercised.
  w.github.failNext(5, 500, {}, { operationId: "checks/create" })
  w.start()
  await eventually("a check run after the 500s", () => onlyRun(w.github, sha), 40_000)
  w.github.failNext(2, 403, { "retry-after": "1" }, { operationId: "checks/update" })
  await putKv(w.consul, `${w.prefix}/shop/releases/${sha}`, { createdAt: new Date().toISOString() })
  await prepareOn(w.nodes[0]!, "shop", sha)
  await eventually("success after the rate limit", () => onlyRun(w.github, sha)?.conclusion === "success", 40_000)
  const statuses = w.github.requests.filter((r) => r.operationId?.startsWith("checks/")).map((r) => r.status)
  assert.ok(statuses.filter((s) => s === 500).length === 5, `500s seen: ${statuses.join(",")}`)
  assert.ok(statuses.filter((s) => s === 403).length === 2, `403s seen: ${statuses.join(",")}`)
  assert.equal(runsOf(w.github, sha).length, 1)
  assert.deepEqual(w.github.violations, [])
})

test(
  "GitHub down for a minute: webhooks are accepted and nodes progress meanwhile, the reporter converges afterwards",
  { timeout: 180_000 },
  async (t) => {
    const w = await world(t, ["web-1", "web-2"])
    const sha = randomSha()
    await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
    await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, record(sha))
    w.start()
    // The inbound side: a real `sacar controller` taking webhooks (same GitHub, so whichever
    // replica holds the leader lock reports).
    const controller = await startController(controllerEnv({
      consul: w.consul,
      prefix: w.prefix,
      webhookSecret: SECRET,
      extra: { GITHUB_API_URL: w.github.url, GITHUB_APP_ID: "4242", GITHUB_APP_PRIVATE_KEY: keyPair.privateKeyPem }
    }))
    t.after(async () => {
      await controller.stop()
    })
    await eventually("a queued check run", () => onlyRun(w.github, sha))
    await w.github.down(60_000)
    const downAt = Date.now()
    // What webhooks and nodes write while GitHub is away.
    await putKv(w.consul, `${w.prefix}/shop/releases/${sha}`, { createdAt: new Date().toISOString() })
    for (const n of w.nodes) await prepareOn(n, "shop", sha)
    // Webhooks keep being accepted: they only write KV.
    const other = randomSha()
    const suite = await sendWebhook(
      `${controller.url}/github/webhook`,
      SECRET,
      "check_suite",
      examplePayload("check_suite", "requested", { repo: REPO, sha: other, ref: "feature-x", installationId: 1 })
    )
    assert.ok(
      suite.status >= 200 && suite.status < 300,
      `check_suite answered ${suite.status} while GitHub was down: ${suite.body}`
    )
    await eventually("the commit recorded", () => getJson(w.consul, `${w.prefix}/shop/github/${other}`))
    await sleep(5_000)
    assert.equal(onlyRun(w.github, sha)?.status, "queued", "nothing reached GitHub while it was down")
    await eventually("success after the outage", () => onlyRun(w.github, sha)?.conclusion === "success", 120_000)
    assert.ok(Date.now() - downAt >= 59_000)
    await eventually(
      "the commit pushed during the outage got its neutral run",
      () => onlyRun(w.github, other)?.conclusion === "neutral",
      30_000
    )
    assert.equal(runsOf(w.github, sha).length, 1)
    assert.deepEqual(w.github.violations, [])
  }
)

test("Deployments: one per generation, a generation claimed by a deployment webhook is reused, a superseded one is marked inactive", async (t) => {
  const w = await world(t, ["web-1"])
  const [a, b] = [randomSha(), randomSha()]
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig({ environment: "staging" }))
  for (const s of [a, b]) {
    await putKv(w.consul, `${w.prefix}/shop/github/${s}`, record(s))
    await putKv(w.consul, `${w.prefix}/shop/releases/${s}`, { createdAt: new Date().toISOString() })
    await prepareOn(w.nodes[0]!, "shop", s)
  }
  w.start()
  const deployIndex = async () => (await listPrefix(w.consul, w.prefix)).get(`${w.prefix}/shop/deploy`)!.modifyIndex

  await putKv(w.consul, `${w.prefix}/shop/deploy`, { sha: a, requestedBy: "octocat" })
  const first = await eventually(
    "deployment of a",
    () => w.github.deployments().find((d) => d.sha === a && d.statuses.length > 0)
  )
  assert.equal(first.environment, "staging")
  assert.deepEqual(first.payload, { sacar: { app: "shop", generation: await deployIndex(), requestedBy: "octocat" } })

  // A deploy of b before a finished: a's Deployment is retired.
  await putKv(w.consul, `${w.prefix}/shop/deploy`, { sha: b, requestedBy: "octocat" })
  await eventually("a marked inactive", () => first.statuses.at(-1)?.state === "inactive")
  await eventually("deployment of b", () => w.github.deployments().find((d) => d.sha === b && d.statuses.length > 0))

  // As the deployment webhook does: the DeploySpec, then the record names the GitHub Deployment that asked.
  const claimed = w.github.deployments().find((d) => d.sha === b)!
  await putKv(w.consul, `${w.prefix}/shop/deploy`, { sha: b, requestedBy: "hubot" })
  const generation = await deployIndex()
  const rec = await getJson(w.consul, `${w.prefix}/shop/github/${b}`)
  await putKv(w.consul, `${w.prefix}/shop/github/${b}`, { ...rec, deployment: { generation, id: claimed.id } })
  await w.nodes[0]!.status("shop", { current: b, deploy: { generation, sha: b, phase: "live" } })
  await eventually("success on the claimed Deployment", () => claimed.statuses.at(-1)?.state === "success")
  assert.equal(w.github.deployments().length, 2, "no Deployment created for the claimed generation")
  assert.deepEqual(w.github.violations, [])
})

test("a 5xx after GitHub applied a create: the run and the Deployment are found and adopted, never made twice", async (t) => {
  const w = await world(t, ["web-1"])
  const sha = randomSha()
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  // GitHub creates the run, then answers 502 (its answer is lost); the same for the Deployment.
  w.github.failNext(1, 502, {}, { operationId: "checks/create", applied: true })
  w.github.failNext(1, 502, {}, { operationId: "repos/create-deployment", applied: true })
  await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, record(sha))
  w.start()

  const recorded = await eventually("the record names the check run", async () => {
    const r = await getJson(w.consul, `${w.prefix}/shop/github/${sha}`)
    return r?.checkRunId !== undefined ? r : undefined
  })
  assert.equal(runsOf(w.github, sha).length, 1, "one check run per app and commit")
  assert.equal(recorded.checkRunId, runsOf(w.github, sha)[0]!.id)

  await putKv(w.consul, `${w.prefix}/shop/deploy`, { sha, requestedBy: "octocat" })
  const generation = (await listPrefix(w.consul, w.prefix)).get(`${w.prefix}/shop/deploy`)!.modifyIndex
  await w.nodes[0]!.status("shop", { deploy: { generation, sha, phase: "live" } })
  await eventually(
    "the deployment reports success",
    () => w.github.deployments().find((x) => x.sha === sha)?.statuses.at(-1)?.state === "success"
  )
  assert.equal(w.github.deployments().filter((d) => d.sha === sha).length, 1, "one Deployment per generation")
  const mirrored = await getJson(w.consul, `${w.prefix}/shop/github/${sha}`)
  assert.equal(mirrored.deployment.id, w.github.deployments().find((d) => d.sha === sha)!.id)
  assert.deepEqual(w.github.violations, [])
})

test("an error GitHub will never accept (422) is parked: logged once, counted, not retried every few seconds", async (t) => {
  const w = await world(t, ["web-1"])
  const sha = randomSha()
  await putKv(w.consul, `${w.prefix}/shop/config`, appConfig())
  w.github.failNext(1, 422, {}, { operationId: "checks/create", message: "Validation Failed" })
  await putKv(w.consul, `${w.prefix}/shop/github/${sha}`, record(sha))
  const running = w.start()
  await eventually("the refused create", () => w.github.requests.some((r) => r.operationId === "checks/create"))
  // Node changes keep waking the loop meanwhile; a retried create would come within 2 s.
  await prepareOn(w.nodes[0]!, "shop", sha, 100)
  await sleep(6_000)
  const creates = w.github.requests.filter((r) => r.operationId === "checks/create")
  assert.deepEqual(creates.map((r) => r.status), [422])
  assert.match(running.metrics.render(), /sacar_github_parked_total\{operation="createCheckRun",status="422"\} 1/)
})
