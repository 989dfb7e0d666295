// The GitHub path end to end, against the fake GitHub in App mode: a signed push
// webhook, a notify, nodes getting ready, the check run turning green with a Deploy
// button, the button's requested_action webhook, the DeploySpec, and the Deployment's
// statuses. Then failover between two `sacar controller` processes.
//
// Nodes are simulated (registrations under a session + NodeStatus writes, see
// test/support/simulated-nodes.ts): this test is about the controller, and simulated
// nodes make it fast and let it time each node exactly.
import assert from "node:assert/strict"
import { test, type TestContext } from "node:test"
import { controllerEnv, getJson, putKv, randomSha, startController } from "../controller/harness.ts"
import { randomPrefix, startConsul } from "../support/consul.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { examplePayload, sendWebhook, startFakeGitHub } from "../support/fake-github/index.ts"
import { Kv } from "../support/kv.ts"
import { appKeyPair } from "../support/reporter.ts"
import { prepareOn, registerNode } from "../support/simulated-nodes.ts"
import type { SimulatedNode } from "../support/simulated-nodes.ts"

const REPO = "acme/shop"
const SECRET = "webhook-secret-for-tests"
const NOTIFY = "notify-token-for-tests"
const APP_ID = "4242"
const keys = appKeyPair()

const appConfig = {
  repo: REPO,
  branch: "main",
  artifact: "file:///srv/{app}/{sha}.tgz",
  nodes: ["web-*"],
  environment: "production"
}

/**
 * Consul, the fake GitHub (App mode), the app's config, simulated nodes and the
 * controller environment for one test; everything stopped when the test ends.
 */
const world = async (t: TestContext, nodeNames: ReadonlyArray<string>, extra: Record<string, string> = {}) => {
  const consul = await startConsul()
  t.after(() => consul.close())
  const github = await startFakeGitHub({ app: { appId: APP_ID, publicKey: keys.publicKeyPem } })
  t.after(() => github.close())
  const prefix = randomPrefix()
  await putKv(consul.addr, `${prefix}/shop/config`, appConfig)
  const nodes: SimulatedNode[] = []
  for (const n of nodeNames) nodes.push(await registerNode(consul.addr, prefix, n))
  t.after(async () => {
    for (const n of nodes) await n.stop()
  })
  const env = controllerEnv({
    consul: consul.addr,
    prefix,
    webhookSecret: SECRET,
    notifyToken: NOTIFY,
    extra: { GITHUB_API_URL: github.url, GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: keys.privateKeyPem, ...extra }
  })
  return { consul, github, prefix, nodes, env }
}

test("push → notify → nodes ready → Deploy button → requested_action → DeploySpec → deployment in_progress → success", {
  timeout: 120_000
}, async (t) => {
  const { consul, github, prefix, nodes, env } = await world(t, ["web-1", "web-2", "web-3"], {
    SACAR_PUBLIC_URL: "https://sacar.example"
  })
  const controller = await startController(env)
  t.after(async () => {
    await controller.stop()
  })

  const sha = randomSha()
  const push = await sendWebhook(
    `${controller.url}/github/webhook`,
    SECRET,
    "push",
    examplePayload("push", undefined, { repo: REPO, sha, ref: "refs/heads/main", installationId: 1 })
  )
  assert.ok(push.status >= 200 && push.status < 300, `push answered ${push.status}: ${push.body}`)
  const queued = await eventually("a queued check run", () => github.checkRuns().find((r) => r.head_sha === sha))
  assert.equal(queued.name, "sacar/shop")
  assert.equal(queued.output.title, "Waiting for build artifact")

  const notify = await fetch(`${controller.url}/v1/apps/shop/releases`, {
    method: "POST",
    headers: { authorization: `Bearer ${NOTIFY}`, "content-type": "application/json" },
    body: JSON.stringify({ sha, artifact: `file:///srv/shop/${sha}.tgz`, ref: "refs/heads/main" })
  })
  assert.equal(notify.status, 201, await notify.text())

  await Promise.all(nodes.map((n, i) => sleep(i * 700).then(() => prepareOn(n, "shop", sha, 150))))
  const ready = await eventually("check run success", () => {
    const r = github.checkRuns().find((x) => x.head_sha === sha)
    return r?.conclusion === "success" ? r : undefined
  })
  assert.equal(ready.output.title, "Ready to deploy: 3 of 3 nodes ready")
  assert.deepEqual(ready.actions, [{
    label: "Deploy",
    description: "Make this release live on every node",
    identifier: "deploy"
  }])
  assert.equal(ready.details_url, "https://sacar.example/v1/apps/shop")
  // It went through progress on the way: "N of 3 nodes ready" updates.
  const titles = ready.history.map((h) => (h.body["output"] as { title?: string } | undefined)?.title)
  assert.ok(titles.some((x) => /^[0-2] of 3 nodes ready$/.test(x ?? "")), titles.join(" | "))

  const click = await sendWebhook(
    `${controller.url}/github/webhook`,
    SECRET,
    "check_run",
    examplePayload("check_run", "requested_action", {
      repo: REPO,
      sha,
      sender: "octocat",
      installationId: 1,
      requestedAction: "deploy",
      merge: { check_run: { id: ready.id, name: "sacar/shop", external_id: `shop/${sha}` } }
    })
  )
  assert.ok(click.status >= 200 && click.status < 300, `requested_action answered ${click.status}: ${click.body}`)
  const deploy = await eventually("the DeploySpec", async () => {
    const d = await getJson(consul.addr, `${prefix}/shop/deploy`)
    return d?.sha === sha ? d : undefined
  })
  assert.equal(deploy.requestedBy, "octocat")
  const generation = (await new Kv(consul.addr, prefix).raw("shop/deploy"))!.modifyIndex

  for (const n of nodes)
    await n.status("shop", { deploy: { generation, sha, phase: "waiting" } })
  const inProgress = await eventually("deployment in_progress", () => {
    const d = github.deployments().find((x) => x.sha === sha)
    return d?.statuses.some((s) => s.state === "in_progress") ? d : undefined
  })
  assert.equal(inProgress.environment, "production")
  for (const n of nodes) {
    await n.status("shop", { deploy: { generation, sha, phase: "deploying" } })
    await sleep(300)
    await n.status("shop", { current: sha, deploy: { generation, sha, phase: "live" } })
  }
  await eventually(
    "deployment success",
    () => github.deployments().find((x) => x.sha === sha)?.statuses.at(-1)?.state === "success"
  )
  await eventually(
    "check run says live",
    () => github.checkRuns().find((x) => x.head_sha === sha)?.output.title === "Live on 3 of 3 nodes"
  )

  assert.equal(github.checkRuns().length, 1, "exactly one check run")
  assert.equal(github.deployments().length, 1, "exactly one deployment")
  assert.deepEqual(github.deployments()[0]!.statuses.map((s) => s.state), ["in_progress", "success"])
  assert.deepEqual(github.violations, [], "every request matched GitHub's OpenAPI description")
})

/** `sacar_leader` from a controller's /metrics. */
const leads = async (url: string): Promise<boolean> => {
  const text = await fetch(`${url}/metrics`).then((r) => r.text()).catch(() => "")
  return /^sacar_leader 1$/m.test(text)
}

test(
  "failover: SIGKILL the leading controller mid-release; the other finishes the check run, with one check run created",
  { timeout: 150_000 },
  async (t) => {
    const { github, nodes, env } = await world(t, ["web-1", "web-2"])
    const a = await startController(env)
    t.after(async () => {
      await a.stop()
    })
    await eventually("controller a leads", () => leads(a.url), 20_000)
    const b = await startController(env)
    t.after(async () => {
      await b.stop()
    })
    await sleep(1000)
    assert.equal(await leads(b.url), false, "only one leader")

    const sha = randomSha()
    const push = await sendWebhook(
      `${b.url}/github/webhook`,
      SECRET,
      "push",
      examplePayload("push", undefined, { repo: REPO, sha, ref: "refs/heads/main", installationId: 1 })
    )
    assert.ok(push.status >= 200 && push.status < 300, `push answered ${push.status}`)
    const notify = await fetch(`${b.url}/v1/apps/shop/releases`, {
      method: "POST",
      headers: { authorization: `Bearer ${NOTIFY}`, "content-type": "application/json" },
      body: JSON.stringify({ sha, artifact: `file:///srv/shop/${sha}.tgz` })
    })
    assert.equal(notify.status, 201)
    await prepareOn(nodes[0]!, "shop", sha)
    await eventually(
      "1 of 2 nodes ready reported by a",
      () => github.checkRuns().find((r) => r.head_sha === sha)?.output.title === "1 of 2 nodes ready",
      20_000
    )

    const killedAt = Date.now()
    a.child.kill("SIGKILL")
    await prepareOn(nodes[1]!, "shop", sha)
    await eventually(
      "controller b takes over",
      () => leads(b.url),
      60_000
    )
    const tookOverMs = Date.now() - killedAt
    // Session TTL 15 s (dev-consul expires at the TTL) + lock-delay 15 s, plus a lock retry.
    assert.ok(tookOverMs <= 15_000 + 15_000 + 6_000, `takeover after ${tookOverMs} ms`)
    await eventually(
      "the check run finished by b",
      () => github.checkRuns().find((r) => r.head_sha === sha)?.conclusion === "success",
      30_000
    )
    assert.equal(github.checkRuns().filter((r) => r.head_sha === sha).length, 1, "no duplicate check run")
    assert.equal(github.requests.filter((r) => r.operationId === "checks/create").length, 1)
    assert.deepEqual(github.violations, [])
  }
)
