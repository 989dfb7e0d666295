// The notify endpoint (CI says an artifact is ready) and the status endpoints, against
// a real controller process and Consul.
import * as Schema from "effect/Schema"
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { AppStatusReport } from "../../src/spec/status-report.ts"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
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

const TOKEN = "notify-token-for-tests"
const READ_TOKEN = "read-token-for-tests"

describe("controller: notify and status endpoints", () => {
  let consul: TestConsul
  let controller: RunningController
  let prefix: string

  before(async () => {
    consul = await startConsul()
    prefix = randomPrefix()
    await putKv(consul.addr, `${prefix}/shop/config`, {
      repo: "acme/shop",
      artifact: "gs://builds/{app}/{short}-{sha}.tgz",
      artifactSources: ["https://artifacts.example.com/", "https://a.example.com/"],
      nodes: ["web-*"]
    })
    await putKv(consul.addr, `${prefix}/bare/config`, { nodes: ["*"], artifactSources: ["file:///srv/"] })
    controller = await startController(
      controllerEnv({ consul: consul.addr, prefix, notifyToken: TOKEN, readToken: READ_TOKEN })
    )
  })

  after(async () => {
    await controller?.stop()
    await consul?.close()
  })

  const notify = async (app: string, body: unknown) => {
    const res = await fetch(`${controller.url}/v1/apps/${app}/releases`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }

  it("creates the release (201), then answers 200 for the same body without writing", async () => {
    const sha = randomSha()
    const body = {
      sha,
      artifact: "https://artifacts.example.com/shop.tgz",
      sha256: "cd".repeat(32),
      ref: "refs/heads/main"
    }
    const first = await notify("shop", body)
    assert.equal(first.status, 201, JSON.stringify(first.json))
    const key = `${prefix}/shop/releases/${sha}`
    const spec = await getJson(consul.addr, key)
    assert.deepEqual(spec.artifact, { url: "https://artifacts.example.com/shop.tgz", sha256: "cd".repeat(32) })
    assert.equal(spec.ref, "refs/heads/main")
    assert.equal(spec.source, "notify")
    assert.ok(!Number.isNaN(Date.parse(spec.createdAt)))

    const before = await snapshot(consul.addr, prefix)
    const second = await notify("shop", body)
    assert.equal(second.status, 200, JSON.stringify(second.json))
    assert.equal(second.json.created, false)
    assert.deepEqual(await snapshot(consul.addr, prefix), before, "a repeated notify writes nothing")
  })

  it("without an artifact uses the app's template; the same sha notified again is 200", async () => {
    const sha = randomSha()
    const first = await notify("shop", { sha })
    assert.equal(first.status, 201)
    assert.equal(
      (await getJson(consul.addr, `${prefix}/shop/releases/${sha}`)).artifact,
      `gs://builds/shop/${sha.slice(0, 7)}-${sha}.tgz`
    )
    assert.equal((await notify("shop", { sha })).status, 200)
    // Naming the same URL the template gives is the same release.
    assert.equal(
      (await notify("shop", { sha, artifact: `gs://builds/shop/${sha.slice(0, 7)}-${sha}.tgz` })).status,
      200
    )
  })

  it("answers 409 when the release exists with a different artifact, and keeps the original", async () => {
    const sha = randomSha()
    const digest = "ab".repeat(32)
    assert.equal((await notify("shop", { sha, artifact: "https://a.example.com/1.tgz", sha256: digest })).status, 201)
    const before = await snapshot(consul.addr, prefix)
    const conflict = await notify("shop", { sha, artifact: "https://a.example.com/2.tgz", sha256: digest })
    assert.equal(conflict.status, 409)
    assert.match(conflict.json.error, /different artifact/)
    const checksum = await notify("shop", { sha, artifact: "https://a.example.com/1.tgz", sha256: "ef".repeat(32) })
    assert.equal(checksum.status, 409)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })

  it("refuses artifacts outside the app's template and artifactSources, file:// and http://, and foreign URLs without sha256", async () => {
    const before = await snapshot(consul.addr, prefix)
    const digest = "ab".repeat(32)
    for (
      const artifact of [
        "file:///etc/passwd.tgz",
        "http://artifacts.example.com/shop.tgz",
        "gs://other-bucket/shop/x.tgz",
        "https://evil.example.com/shop.tgz",
        "https://artifacts.example.com.evil.example/shop.tgz"
      ]
    ) {
      const res = await notify("shop", { sha: randomSha(), artifact, sha256: digest })
      assert.equal(res.status, 400, `${artifact}: ${JSON.stringify(res.json)}`)
    }
    // Under the template's bucket but not the template's own URL: needs a checksum.
    const unchecked = await notify("shop", { sha: randomSha(), artifact: "gs://builds/shop/other.tgz" })
    assert.equal(unchecked.status, 400)
    assert.match(unchecked.json.error, /sha256/)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
    const checked = await notify("shop", { sha: randomSha(), artifact: "gs://builds/shop/other.tgz", sha256: digest })
    assert.equal(checked.status, 201)
  })

  it("accepts an upper-case sha by storing it lower-case", async () => {
    const sha = randomSha()
    const res = await notify("shop", { sha: sha.toUpperCase() })
    assert.equal(res.status, 201)
    assert.ok((await listPrefix(consul.addr, prefix)).has(`${prefix}/shop/releases/${sha}`))
  })

  it("answers 400 for an app without a template when no artifact is given", async () => {
    const before = await snapshot(consul.addr, prefix)
    const res = await notify("bare", { sha: randomSha() })
    assert.equal(res.status, 400)
    assert.match(res.json.error, /artifact/)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
    const listed = { sha: randomSha(), artifact: "file:///srv/bare.tgz", sha256: "ab".repeat(32) }
    assert.equal((await notify("bare", listed)).status, 201)
  })

  const get = async (path: string) => {
    const res = await fetch(`${controller.url}${path}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }

  it("GET /v1/apps/<app> shows config, releases, deploy, node statuses, lock and pin, decoded", async () => {
    const sha = randomSha()
    assert.equal((await notify("shop", { sha })).status, 201)
    await putKv(consul.addr, `${prefix}/shop/deploy`, { sha })
    await putKv(consul.addr, `${prefix}/shop/status/web-1`, {
      node: "web-1",
      updatedAt: "2026-11-27T10:00:00Z",
      releases: { [sha]: { phase: "ready", attempt: 1 } },
      current: sha,
      deploy: null
    })
    await putKv(consul.addr, `${prefix}/shop/status/web-2`, "{ not json")
    await putKv(consul.addr, `${prefix}/shop/lock`, { by: "alice", reason: "freeze", at: "2026-11-27T09:00:00Z" })
    const deployIndex = (await listPrefix(consul.addr, prefix)).get(`${prefix}/shop/deploy`)!.modifyIndex

    const res = await get("/v1/apps/shop")
    assert.equal(res.status, 200)
    // The same report as `sacar status --json`: it decodes with the project's schema.
    const s = Schema.decodeUnknownSync(AppStatusReport)(res.json)
    assert.equal(s.app, "shop")
    assert.equal(s.config?.repo, "acme/shop")
    assert.equal(s.config?.branch, "main", "defaults applied")
    assert.ok(s.releases.some((r) => r.sha === sha))
    assert.deepEqual({ sha: s.deploy?.spec.sha, generation: s.deploy?.generation }, { sha, generation: deployIndex })
    assert.equal(s.nodes["web-1"]?.releases[sha]?.phase, "ready")
    assert.match(s.problems.join("\n"), /status\/web-2: not valid JSON/)
    assert.equal(s.lock?.by, "alice")
    assert.equal(s.locked, true)
    assert.equal(s.pin, null)
  })

  it("GET /v1/apps lists every app; an unknown app is 404", async () => {
    const list = await get("/v1/apps")
    assert.equal(list.status, 200)
    assert.deepEqual(list.json.apps.map((a: { app: string }) => a.app).sort(), ["bare", "shop"])
    assert.equal((await get("/v1/apps/nosuchapp")).status, 404)
  })
})
