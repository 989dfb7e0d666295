// The controller process itself: health, readiness, metrics, endpoints that are off
// without their secret, start-up errors (exit 2 naming the variable), and SIGTERM
// letting a request in flight finish before exiting 0.
import assert from "node:assert/strict"
import { request } from "node:http"
import { createServer } from "node:net"
import { after, before, describe, it } from "node:test"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { examplePayload, sendWebhook } from "../support/fake-github/webhooks.ts"
import { controllerEnv, getJson, putKv, randomSha, runControllerToExit, snapshot, startController } from "./harness.ts"

const TOKEN = "notify-token-for-tests"

/** A port nothing listens on: bound, then released. */
const deadPort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

describe("controller: process, health and lifecycle", () => {
  let consul: TestConsul
  let prefix: string

  before(async () => {
    consul = await startConsul()
    prefix = randomPrefix()
    await putKv(consul.addr, `${prefix}/shop/config`, { repo: "acme/shop", artifact: "gs://builds/{app}/{sha}.tgz" })
  })

  after(async () => {
    await consul?.close()
  })

  it("serves /healthz, /readyz and /metrics; unknown paths are JSON 404s", async (t) => {
    const controller = await startController(controllerEnv({ consul: consul.addr, prefix }))
    t.after(() => controller.stop())
    const health = await fetch(`${controller.url}/healthz`)
    assert.equal(health.status, 200)
    const ready = await fetch(`${controller.url}/readyz`)
    assert.equal(ready.status, 200, await ready.clone().text())
    const metrics = await fetch(`${controller.url}/metrics`)
    assert.equal(metrics.status, 200)
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/)
    const text = await metrics.text()
    for (
      const family of ["sacar_webhooks_total", "sacar_notify_total", "sacar_github_requests_total", "sacar_leader"]
    ) {
      assert.match(text, new RegExp(`# TYPE ${family} (counter|gauge)`))
    }
    const missing = await fetch(`${controller.url}/nope`)
    assert.equal(missing.status, 404)
    assert.equal(typeof ((await missing.json()) as { error: unknown }).error, "string")
    const wrongMethod = await fetch(`${controller.url}/github/webhook`)
    assert.equal(wrongMethod.status, 405)
  })

  it("is live but not ready when Consul is unreachable", async (t) => {
    const port = await deadPort()
    const controller = await startController(controllerEnv({ consul: `http://127.0.0.1:${port}`, prefix }))
    t.after(() => controller.stop())
    assert.equal((await fetch(`${controller.url}/healthz`)).status, 200)
    const ready = await fetch(`${controller.url}/readyz`)
    assert.equal(ready.status, 503)
    assert.match(((await ready.json()) as { error: string }).error, /Consul/)
  })

  it("answers 503 on webhooks and /v1 when their secrets are not set, and says so at start", async (t) => {
    const controller = await startController(controllerEnv({ consul: consul.addr, prefix }))
    t.after(() => controller.stop())
    const before = await snapshot(consul.addr, prefix)
    const hook = await sendWebhook(
      `${controller.url}/github/webhook`,
      "whatever",
      "push",
      examplePayload("push", undefined, { repo: "acme/shop", sha: randomSha(), ref: "main" })
    )
    assert.equal(hook.status, 503)
    assert.match(JSON.parse(hook.body).error, /GITHUB_WEBHOOK_SECRET/)
    const notify = await fetch(`${controller.url}/v1/apps/shop/releases`, {
      method: "POST",
      headers: { authorization: "Bearer anything" },
      body: JSON.stringify({ sha: randomSha() })
    })
    assert.equal(notify.status, 503)
    assert.match(((await notify.json()) as { error: string }).error, /SACAR_NOTIFY_TOKEN/)
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
    assert.match(controller.logs(), /webhooks are off/)
  })

  it("reads secrets from *_FILE variables", async (t) => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises")
    const { tmpdir } = await import("node:os")
    const { join } = await import("node:path")
    const dir = await mkdtemp(join(tmpdir(), "sacar-controller-"))
    t.after(() => rm(dir, { recursive: true, force: true }))
    await writeFile(join(dir, "token"), `${TOKEN}\n`)
    await writeFile(join(dir, "read-token"), "read-token-for-tests\n")
    const controller = await startController({
      ...controllerEnv({ consul: consul.addr, prefix }),
      SACAR_NOTIFY_TOKEN_FILE: join(dir, "token"),
      SACAR_READ_TOKEN_FILE: join(dir, "read-token")
    })
    t.after(() => controller.stop())
    const res = await fetch(`${controller.url}/v1/apps`, { headers: { authorization: "Bearer read-token-for-tests" } })
    assert.equal(res.status, 200)
    const notify = await fetch(`${controller.url}/v1/apps/shop/releases`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: "{}"
    })
    assert.equal(notify.status, 400, "the notify token from its file is accepted (the body is then wrong)")
  })

  it("stops at start with exit 2 and one line naming a bad variable", async () => {
    const base = controllerEnv({ consul: consul.addr, prefix })
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ SACAR_LISTEN: "not-an-address" }, /SACAR_LISTEN/],
      [{ SACAR_PUBLIC_URL: "ftp://x" }, /SACAR_PUBLIC_URL/],
      [{ SACAR_LOG_LEVEL: "loud" }, /SACAR_LOG_LEVEL/],
      [{ SACAR_NOTIFY_TOKEN_FILE: "/nonexistent/token" }, /SACAR_NOTIFY_TOKEN_FILE/],
      [{ GITHUB_WEBHOOK_SECRET_FILE: "/nonexistent/secret" }, /GITHUB_WEBHOOK_SECRET_FILE/],
      [{ GITHUB_APP_ID: "12345" }, /GITHUB_APP_PRIVATE_KEY/],
      [{ GITHUB_API_URL: "not a url", GITHUB_TOKEN: "t" }, /GITHUB_API_URL/],
      [{ CONSUL_HTTP_ADDR: "ftp://consul" }, /CONSUL_HTTP_ADDR/],
      [{ SACAR_FAILED_RELEASE_TTL: "3 days" }, /SACAR_FAILED_RELEASE_TTL/]
    ]
    for (const [extra, pattern] of cases) {
      const { code, stderr } = await runControllerToExit({ ...base, ...extra })
      assert.equal(code, 2, `${JSON.stringify(extra)}: ${stderr}`)
      const lines = stderr.trim().split("\n")
      assert.equal(lines.length, 1, `one line for ${JSON.stringify(extra)}: ${stderr}`)
      assert.match(lines[0]!, pattern)
    }
  })

  it("on SIGTERM finishes the request in flight, then exits 0", async () => {
    const secret = "webhook-secret-for-tests"
    const controller = await startController(controllerEnv({ consul: consul.addr, prefix, webhookSecret: secret }))
    const sha = randomSha()
    const payload = JSON.stringify(examplePayload("push", undefined, { repo: "acme/shop", sha, ref: "main" }))
    const { sign } = await import("@octokit/webhooks-methods")
    const signature = await sign(secret, payload)
    const answer = new Promise<number>((resolve, reject) => {
      const req = request(`${controller.url}/github/webhook`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          "x-github-event": "push",
          "x-hub-signature-256": signature
        }
      })
      req.on("response", (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode ?? 0))
      })
      req.on("error", reject)
      // Half the body now, SIGTERM, the rest after: the request is in flight across the signal.
      req.write(payload.slice(0, 100))
      setTimeout(() => {
        controller.child.kill("SIGTERM")
        setTimeout(() => req.end(payload.slice(100)), 300)
      }, 200)
    })
    assert.equal(await answer, 200)
    assert.equal(await controller.stop(), 0)
    assert.equal((await getJson(consul.addr, `${prefix}/shop/github/${sha}`)).sha, sha)
    assert.match(controller.logs(), /http server closed/)
  })

  it("prints help with --help and exits 0", async () => {
    const { spawnSync } = await import("node:child_process")
    const { join } = await import("node:path")
    const root = join(import.meta.dirname, "..", "..")
    const res = spawnSync(join(root, "node_modules", ".bin", "node"), [
      join(root, "bin", "sacar.ts"),
      "controller",
      "--help"
    ], { encoding: "utf8" })
    assert.equal(res.status, 0)
    assert.match(res.stdout, /Usage: sacar controller/)
    assert.match(res.stdout, /GITHUB_WEBHOOK_SECRET/)
  })
})
