// GitHub events turned into desired state: real example payloads from
// @octokit/webhooks-examples (repository, sha and branch substituted), signed, sent to
// a real controller process; the result is read back from Consul directly.
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { examplePayload, type PayloadOverrides, sendWebhook } from "../support/fake-github/webhooks.ts"
import {
  controllerEnv,
  getJson,
  listPrefix,
  putKv,
  randomSha,
  type RunningController,
  snapshot,
  startController
} from "./harness.ts"

const SECRET = "webhook-secret-for-tests"
const TOKEN = "notify-token-for-tests"

describe("controller: webhooks write desired state", () => {
  let consul: TestConsul
  let controller: RunningController
  let prefix: string
  let hook: string

  const config = (repo: string, extra: Record<string, unknown> = {}) => ({
    repo,
    branch: "main",
    artifact: "gs://builds/{app}/{sha}.tgz",
    ...extra
  })

  before(async () => {
    consul = await startConsul()
    prefix = randomPrefix()
    await putKv(consul.addr, `${prefix}/shop/config`, config("acme/shop", { buildWorkflow: "build" }))
    await putKv(
      consul.addr,
      `${prefix}/web/config`,
      config("Acme/Mono", { environment: "staging", githubDeployments: true })
    )
    await putKv(
      consul.addr,
      `${prefix}/api/config`,
      config("acme/mono", { environment: "staging", githubDeployments: true })
    )
    await putKv(consul.addr, `${prefix}/frozen/config`, config("acme/frozen", { githubDeployments: true }))
    // The default: GitHub Deployments are never deploy orders.
    await putKv(consul.addr, `${prefix}/plain/config`, config("acme/plain"))
    await putKv(consul.addr, `${prefix}/frozen/lock`, {
      by: "alice",
      reason: "black friday freeze",
      at: "2026-11-27T09:00:00Z"
    })
    await putKv(consul.addr, `${prefix}/pinned/config`, config("acme/pinned"))
    controller = await startController(
      controllerEnv({ consul: consul.addr, prefix, webhookSecret: SECRET, notifyToken: TOKEN })
    )
    hook = `${controller.url}/github/webhook`
  })

  after(async () => {
    await controller?.stop()
    await consul?.close()
  })

  const send = async (
    event: string,
    action: string | undefined,
    overrides: PayloadOverrides,
    options: { deliveryId?: string } = {}
  ) => {
    const payload = examplePayload(event, action, overrides)
    const res = await sendWebhook(hook, SECRET, event, payload, options)
    return { ...res, payload, json: JSON.parse(res.body) as Record<string, any> }
  }

  it("answers ping with 200", async () => {
    const res = await send("ping", undefined, {})
    assert.equal(res.status, 200)
  })

  it("push to the app's branch records the commit; a redelivery changes nothing", async () => {
    const sha = randomSha()
    const res = await send("push", undefined, { repo: "acme/shop", sha, ref: "main", installationId: 4242 })
    assert.equal(res.status, 200, res.body)
    const key = `${prefix}/shop/github/${sha}`
    const record = await getJson(consul.addr, key)
    assert.equal(record.repo, "acme/shop")
    assert.equal(record.sha, sha)
    assert.equal(record.ref, "refs/heads/main")
    assert.equal(record.branch, "main")
    assert.equal(record.installationId, 4242)
    assert.ok(!Number.isNaN(Date.parse(record.createdAt)))
    assert.equal(
      await getJson(consul.addr, `${prefix}/shop/releases/${sha}`),
      undefined,
      "a push alone does not release"
    )

    const before = await snapshot(consul.addr, prefix)
    const again = await send("push", undefined, { repo: "acme/shop", sha, ref: "main", installationId: 4242 }, {
      deliveryId: res.deliveryId
    })
    assert.equal(again.status, 200)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("push to another branch is ignored (202)", async () => {
    const sha = randomSha()
    const before = await snapshot(consul.addr, prefix)
    const res = await send("push", undefined, { repo: "acme/shop", sha, ref: "feature/x" })
    assert.equal(res.status, 202, res.body)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("push to a repo shared by two apps records the commit for both, names compared case-insensitively", async () => {
    const sha = randomSha()
    const res = await send("push", undefined, { repo: "ACME/mono", sha, ref: "main" })
    assert.equal(res.status, 200, res.body)
    assert.equal((await getJson(consul.addr, `${prefix}/web/github/${sha}`)).sha, sha)
    assert.equal((await getJson(consul.addr, `${prefix}/api/github/${sha}`)).sha, sha)
  })

  it("check_suite requested on another branch records the commit with its branch", async () => {
    const sha = randomSha()
    const res = await send("check_suite", "requested", { repo: "acme/shop", sha, ref: "feature/y", installationId: 77 })
    assert.equal(res.status, 200, res.body)
    const record = await getJson(consul.addr, `${prefix}/shop/github/${sha}`)
    assert.equal(record.branch, "feature/y")
    assert.equal(record.installationId, 77)
    assert.equal(await getJson(consul.addr, `${prefix}/shop/releases/${sha}`), undefined)
  })

  it("workflow_run completed with success writes the ReleaseSpec from the artifact template", async () => {
    const sha = randomSha()
    const res = await send("workflow_run", "completed", {
      repo: "acme/shop",
      sha,
      ref: "main",
      merge: {
        workflow_run: {
          conclusion: "success",
          event: "push",
          name: "Build and upload",
          path: ".github/workflows/build.yml"
        }
      }
    })
    assert.equal(res.status, 200, res.body)
    const spec = await getJson(consul.addr, `${prefix}/shop/releases/${sha}`)
    assert.equal(spec.artifact, `gs://builds/shop/${sha}.tgz`)
    assert.equal(spec.source, "github")
    assert.equal(spec.ref, "refs/heads/main")
    assert.ok(!Number.isNaN(Date.parse(spec.createdAt)))
  })

  it("workflow_run that failed, ran another workflow, or ran on another branch writes nothing (202)", async () => {
    const before = await snapshot(consul.addr, prefix)
    for (
      const merge of [
        { workflow_run: { conclusion: "failure", event: "push", path: ".github/workflows/build.yml" } },
        {
          workflow_run: { conclusion: "success", event: "push", name: "lint", path: ".github/workflows/lint.yml" },
          workflow: { name: "lint", path: ".github/workflows/lint.yml" }
        }
      ]
    ) {
      const res = await send("workflow_run", "completed", { repo: "acme/shop", sha: randomSha(), ref: "main", merge })
      assert.equal(res.status, 202, res.body)
    }
    const other = await send("workflow_run", "completed", {
      repo: "acme/shop",
      sha: randomSha(),
      ref: "feature/z",
      merge: { workflow_run: { conclusion: "success", event: "push", path: ".github/workflows/build.yml" } }
    })
    assert.equal(other.status, 202, other.body)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  const checkRun = (app: string, sha: string, action: string, identifier?: string, sender = "octocat") =>
    send("check_run", action, {
      repo: `acme/${app}`,
      sha,
      ref: "main",
      sender,
      ...(identifier !== undefined ? { requestedAction: identifier } : {}),
      merge: { check_run: { name: `sacar/${app}` } }
    })

  it("requested_action deploy writes the DeploySpec with requestedBy the clicking user", async () => {
    const sha = randomSha()
    const res = await checkRun("shop", sha, "requested_action", "deploy", "hubot")
    assert.equal(res.status, 200, res.body)
    const deploy = await getJson(consul.addr, `${prefix}/shop/deploy`)
    assert.equal(deploy.sha, sha)
    assert.equal(deploy.requestedBy, "hubot")
    assert.ok(!Number.isNaN(Date.parse(deploy.requestedAt)))
  })

  it("requested_action deploy on a locked app records the refusal and writes no DeploySpec", async () => {
    const sha = randomSha()
    const res = await checkRun("frozen", sha, "requested_action", "deploy", "mallory")
    assert.equal(res.status, 200, res.body)
    assert.equal(res.json.result, "refused")
    assert.equal(await getJson(consul.addr, `${prefix}/frozen/deploy`), undefined)
    const record = await getJson(consul.addr, `${prefix}/frozen/github/${sha}`)
    assert.equal(record.refused.by, "mallory")
    assert.match(record.refused.reason, /alice.*black friday freeze/)
    assert.ok(!Number.isNaN(Date.parse(record.refused.at)))
  })

  it("an expired lock does not refuse; a pin does not stop a human deploy", async () => {
    await putKv(consul.addr, `${prefix}/pinned/pin`, {
      sha: randomSha(),
      by: "bob",
      reason: "rollback",
      at: "2026-11-27T09:00:00Z"
    })
    await putKv(consul.addr, `${prefix}/pinned/lock`, {
      by: "bob",
      reason: "old",
      at: "2020-01-01T00:00:00Z",
      until: "2020-01-02T00:00:00Z"
    })
    const sha = randomSha()
    const res = await checkRun("pinned", sha, "requested_action", "deploy", "carol")
    assert.equal(res.status, 200, res.body)
    assert.equal((await getJson(consul.addr, `${prefix}/pinned/deploy`)).sha, sha)
  })

  it("requested_action prepare writes the ReleaseSpec with requestedBy", async () => {
    const sha = randomSha()
    const res = await checkRun("shop", sha, "requested_action", "prepare", "dora")
    assert.equal(res.status, 200, res.body)
    const spec = await getJson(consul.addr, `${prefix}/shop/releases/${sha}`)
    assert.equal(spec.requestedBy, "dora")
    assert.equal(spec.artifact, `gs://builds/shop/${sha}.tgz`)
  })

  it("check_run rerequested rewrites the release (new ModifyIndex) and keeps its artifact", async () => {
    const sha = randomSha()
    const digest = "ab".repeat(32)
    const notified = await fetch(`${controller.url}/v1/apps/shop/releases`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ sha, artifact: "gs://builds/shop/rebuilt.tgz", sha256: digest })
    })
    assert.equal(notified.status, 201)
    const key = `${prefix}/shop/releases/${sha}`
    const first = (await listPrefix(consul.addr, prefix)).get(key)!
    const res = await checkRun("shop", sha, "rerequested", undefined, "erin")
    assert.equal(res.status, 200, res.body)
    const second = (await listPrefix(consul.addr, prefix)).get(key)!
    assert.ok(second.modifyIndex > first.modifyIndex, "the rewrite must move the ModifyIndex")
    const spec = JSON.parse(second.value)
    assert.deepEqual(spec.artifact, { url: "gs://builds/shop/rebuilt.tgz", sha256: digest })
    assert.equal(spec.requestedBy, "erin")
  })

  it("a check run that is not Sacar's is ignored", async () => {
    const before = await snapshot(consul.addr, prefix)
    const res = await send("check_run", "requested_action", {
      repo: "acme/shop",
      sha: randomSha(),
      requestedAction: "deploy",
      merge: { check_run: { name: "ci/lint" } }
    })
    assert.equal(res.status, 202, res.body)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("deployment created for the app's environment writes the DeploySpec and notes the deployment", async () => {
    const sha = randomSha()
    const res = await send("deployment", "created", {
      repo: "acme/mono",
      sha,
      pick: (e) => !("workflow_run" in e),
      merge: { deployment: { environment: "staging", id: 99001, creator: { login: "frank" }, payload: {} } }
    })
    assert.equal(res.status, 200, res.body)
    const entries = await listPrefix(consul.addr, prefix)
    for (const app of ["web", "api"]) {
      const deploy = entries.get(`${prefix}/${app}/deploy`)!
      assert.equal(JSON.parse(deploy.value).sha, sha)
      assert.equal(JSON.parse(deploy.value).requestedBy, "frank")
      const record = JSON.parse(entries.get(`${prefix}/${app}/github/${sha}`)!.value)
      assert.deepEqual(record.deployment, { generation: deploy.modifyIndex, id: 99001 })
    }
    // A redelivery of the same Deployment is not a second deploy.
    const before = await snapshot(consul.addr, prefix)
    const again = await sendWebhook(hook, SECRET, "deployment", JSON.parse(JSON.stringify(res.payload)), {
      deliveryId: res.deliveryId
    })
    assert.equal(again.status, 202, again.body)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("deployment for another environment, or one Sacar created itself, writes nothing (202)", async () => {
    const before = await snapshot(consul.addr, prefix)
    const other = await send("deployment", "created", {
      repo: "acme/mono",
      sha: randomSha(),
      merge: { deployment: { environment: "production" } }
    })
    assert.equal(other.status, 202, other.body)
    // The leader's own Deployments (src/controller/report/github-report.ts) come back as webhooks.
    for (
      const deployment of [
        { environment: "staging", payload: { sacar: { app: "web", generation: 12, requestedBy: "octocat" } } },
        { environment: "staging", payload: JSON.stringify({ sacar: { app: "web", generation: 12 } }) }
      ]
    ) {
      const own = await send("deployment", "created", { repo: "acme/mono", sha: randomSha(), merge: { deployment } })
      assert.equal(own.status, 202, own.body)
    }
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("deployment on a locked app records the refusal", async () => {
    const sha = randomSha()
    const res = await send("deployment", "created", {
      repo: "acme/frozen",
      sha,
      pick: (e) => !("workflow_run" in e),
      merge: { deployment: { environment: "production", creator: { login: "gina" }, payload: {} } }
    })
    assert.equal(res.status, 200, res.body)
    assert.equal(await getJson(consul.addr, `${prefix}/frozen/deploy`), undefined)
    assert.equal((await getJson(consul.addr, `${prefix}/frozen/github/${sha}`)).refused.by, "gina")
  })

  it("a fork's pull request run on a branch named main does not create a release (202)", async () => {
    const before = await snapshot(consul.addr, prefix)
    const fork = await send("workflow_run", "completed", {
      repo: "acme/shop",
      sha: randomSha(),
      ref: "main",
      pick: (e) => Array.isArray((e["workflow_run"] as { pull_requests?: unknown })?.pull_requests),
      merge: {
        workflow_run: {
          conclusion: "success",
          event: "pull_request",
          path: ".github/workflows/build.yml",
          head_repository: { full_name: "mallory/shop" }
        }
      }
    })
    assert.equal(fork.status, 202, fork.body)
    assert.match(fork.json.reason, /pull_request|mallory/)
    // A workflow file added by the PR whose display name is the build's name.
    const renamed = await send("workflow_run", "completed", {
      repo: "acme/shop",
      sha: randomSha(),
      ref: "main",
      merge: {
        workflow_run: { conclusion: "success", event: "push", name: "build", path: ".github/workflows/pr-evil.yml" },
        workflow: { name: "build", path: ".github/workflows/pr-evil.yml" }
      }
    })
    assert.equal(renamed.status, 202, renamed.body)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("a Deployment GitHub Actions created for a job's environment deploys nothing, even with githubDeployments", async () => {
    const before = await snapshot(consul.addr, prefix)
    for (const repo of ["acme/mono", "acme/plain"]) {
      const res = await send("deployment", "created", {
        repo,
        sha: randomSha(),
        pick: (e) => "workflow_run" in e,
        merge: { deployment: { environment: repo === "acme/mono" ? "staging" : "production" } }
      })
      assert.equal(res.status, 202, res.body)
    }
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("a Deployment a person created is no deploy order for an app without githubDeployments (202)", async () => {
    const before = await snapshot(consul.addr, prefix)
    const res = await send("deployment", "created", {
      repo: "acme/plain",
      sha: randomSha(),
      pick: (e) => !("workflow_run" in e),
      merge: { deployment: { environment: "production", payload: {} } }
    })
    assert.equal(res.status, 202, res.body)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("a redelivered Deploy click (same X-GitHub-Delivery) deploys once; a second click deploys again", async () => {
    const sha = randomSha()
    const first = await checkRun("shop", sha, "requested_action", "deploy", "hubot")
    assert.equal(first.status, 200, first.body)
    const deployKey = `${prefix}/shop/deploy`
    const generation = (await listPrefix(consul.addr, prefix)).get(deployKey)!.modifyIndex
    const again = await sendWebhook(hook, SECRET, "check_run", first.payload, { deliveryId: first.deliveryId })
    assert.equal(again.status, 200, again.body)
    assert.equal(JSON.parse(again.body).result, "repeat")
    assert.equal((await listPrefix(consul.addr, prefix)).get(deployKey)!.modifyIndex, generation, "no new generation")
    const second = await sendWebhook(hook, SECRET, "check_run", first.payload)
    assert.equal(second.status, 200, second.body)
    assert.ok((await listPrefix(consul.addr, prefix)).get(deployKey)!.modifyIndex > generation, "a new click deploys")
  })

  it("check_suite rerequested (Re-run all checks) retries the commit's release", async () => {
    const sha = randomSha()
    const created = await checkRun("shop", sha, "requested_action", "prepare", "dora")
    assert.equal(created.status, 200, created.body)
    const key = `${prefix}/shop/releases/${sha}`
    const first = (await listPrefix(consul.addr, prefix)).get(key)!
    const res = await send("check_suite", "rerequested", { repo: "acme/shop", sha, ref: "main", sender: "erin" })
    assert.equal(res.status, 200, res.body)
    const second = (await listPrefix(consul.addr, prefix)).get(key)!
    assert.ok(second.modifyIndex > first.modifyIndex, "the release is written again, so failed nodes retry")
    assert.equal(JSON.parse(second.value).requestedBy, "erin")
    assert.equal(JSON.parse(second.value).artifact, JSON.parse(first.value).artifact)
  })

  it("a commit first seen on another branch is on the deploy branch once pushed there", async () => {
    const sha = randomSha()
    const suite = await send("check_suite", "requested", { repo: "acme/shop", sha, ref: "gh-readonly-queue/main/pr-1" })
    assert.equal(suite.status, 200, suite.body)
    assert.equal((await getJson(consul.addr, `${prefix}/shop/github/${sha}`)).branch, "gh-readonly-queue/main/pr-1")
    const push = await send("push", undefined, { repo: "acme/shop", sha, ref: "main" })
    assert.equal(push.status, 200, push.body)
    const record = await getJson(consul.addr, `${prefix}/shop/github/${sha}`)
    assert.equal(record.branch, "main")
    assert.equal(record.ref, "refs/heads/main")
  })

  it("an event named like an Object member (constructor, __proto__) is ignored, not a crash", async () => {
    for (const event of ["constructor", "__proto__", "toString"]) {
      const res = await sendWebhook(hook, SECRET, event, { action: "created" })
      assert.equal(res.status, 202, `${event}: ${res.body}`)
    }
  })

  it("counted handled deliveries in /metrics", async () => {
    const metrics = await (await fetch(`${controller.url}/metrics`)).text()
    assert.match(metrics, /sacar_webhooks_total\{event="push",result="handled"\} [1-9]/)
    assert.match(metrics, /sacar_webhooks_total\{event="check_run",result="refused"\} 1/)
  })
})
