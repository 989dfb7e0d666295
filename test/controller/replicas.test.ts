// Two controller replicas on one prefix, both taking webhooks and notifications for
// the same commit at the same time: the writes merge (cas), the release is created
// exactly once, and redeliveries to either replica change nothing.
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { examplePayload, sendWebhook } from "../support/fake-github/webhooks.ts"
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

describe("controller: two replicas take webhooks for the same commit", () => {
  let consul: TestConsul
  let prefix: string
  let replicas: RunningController[] = []

  before(async () => {
    consul = await startConsul()
    prefix = randomPrefix()
    await putKv(consul.addr, `${prefix}/shop/config`, {
      repo: "acme/shop",
      artifact: "gs://builds/{app}/{sha}.tgz",
      buildWorkflow: "build"
    })
    const env = controllerEnv({ consul: consul.addr, prefix, webhookSecret: SECRET, notifyToken: TOKEN })
    replicas = await Promise.all([startController(env), startController(env)])
  })

  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()))
    await consul?.close()
  })

  it("merges concurrent deliveries into one record and one release", async () => {
    const sha = randomSha()
    const deliveries = [
      ["push", undefined, { repo: "acme/shop", sha, ref: "main", installationId: 31 }],
      ["check_suite", "requested", { repo: "acme/shop", sha, ref: "main", installationId: 31 }],
      ["workflow_run", "completed", {
        repo: "acme/shop",
        sha,
        ref: "main",
        installationId: null,
        merge: { workflow_run: { conclusion: "success", event: "push", path: ".github/workflows/build.yml" } }
      }]
    ] as const
    const sends = deliveries.flatMap(([event, action, overrides]) =>
      replicas.map((r) =>
        sendWebhook(`${r.url}/github/webhook`, SECRET, event, examplePayload(event, action, overrides))
      )
    )
    const notifies = replicas.map((r) =>
      fetch(`${r.url}/v1/apps/shop/releases`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ sha })
      })
    )
    const results = await Promise.all(sends)
    for (const res of results) assert.equal(res.status, 200, res.body)
    const notified = (await Promise.all(notifies)).map((r) => r.status)
    // Whoever came first created it; every other writer found the same release.
    assert.ok(notified.every((s) => s === 200 || s === 201), String(notified))

    const record = await getJson(consul.addr, `${prefix}/shop/github/${sha}`)
    assert.equal(record.sha, sha)
    assert.equal(record.branch, "main")
    assert.equal(record.installationId, 31)
    const release = await getJson(consul.addr, `${prefix}/shop/releases/${sha}`)
    assert.equal(release.artifact, `gs://builds/shop/${sha}.tgz`)
    const entries = await listPrefix(consul.addr, prefix)
    assert.equal([...entries.keys()].filter((k) => k.includes(sha)).length, 2, "one record and one release")

    const before = await snapshot(consul.addr, prefix)
    for (const replica of replicas) {
      const again = await sendWebhook(
        `${replica.url}/github/webhook`,
        SECRET,
        "push",
        examplePayload("push", undefined, deliveries[0][2])
      )
      assert.equal(again.status, 200)
    }
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })
})
