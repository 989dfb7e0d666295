// Bad input at the controller's door: every rejected request gets the right status
// code and a JSON error, and the whole KV prefix is byte-for-byte (and index-for-index)
// what it was before.
import { sign } from "@octokit/webhooks-methods"
import assert from "node:assert/strict"
import { request } from "node:http"
import { after, before, describe, it } from "node:test"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { examplePayload, sendWebhook } from "../support/fake-github/webhooks.ts"
import { controllerEnv, putKv, randomSha, type RunningController, snapshot, startController } from "./harness.ts"

const SECRET = "webhook-secret-for-tests"
const TOKEN = "notify-token-for-tests"
const READ_TOKEN = "read-token-for-tests"
const LIMIT = 25 * 1024 * 1024

describe("controller: bad input writes nothing", () => {
  let consul: TestConsul
  let controller: RunningController
  let prefix: string
  let hook: string

  before(async () => {
    consul = await startConsul()
    prefix = randomPrefix()
    await putKv(consul.addr, `${prefix}/shop/config`, {
      repo: "acme/shop",
      branch: "main",
      artifact: "gs://builds/shop/{sha}.tgz"
    })
    controller = await startController(
      controllerEnv({ consul: consul.addr, prefix, webhookSecret: SECRET, notifyToken: TOKEN, readToken: READ_TOKEN })
    )
    hook = `${controller.url}/github/webhook`
  })

  after(async () => {
    await controller?.stop()
    await consul?.close()
  })

  /**
   * Runs `act` and reports what a test asserts on: the status, whether the body is a
   * JSON error with a message, and which keys of the KV prefix changed (none, for any
   * of these requests). The leader lock is left out (see `snapshot`).
   */
  const attempt = async (act: () => Promise<{ status: number; body: string }>) => {
    const before = await snapshot(consul.addr, prefix)
    const res = await act()
    const after = await snapshot(consul.addr, prefix)
    const writes = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k])
    const error = (() => {
      try {
        return (JSON.parse(res.body) as { error?: unknown }).error
      } catch {
        return undefined
      }
    })()
    const jsonError = typeof error === "string" && error.length > 0
    return { outcome: { status: res.status, jsonError, writes: writes.sort() }, body: res.body }
  }
  /** The outcome of a request turned away (or ignored, 202) without a write. */
  const nothingWritten = (status: number) => ({ status, jsonError: status >= 400, writes: [] })

  const push = (overrides: { repo?: string; sha?: string } = {}) =>
    examplePayload("push", undefined, {
      repo: overrides.repo ?? "acme/shop",
      sha: overrides.sha ?? randomSha(),
      ref: "main"
    })

  it("rejects an unsigned webhook with 401", async () => {
    const res = await attempt(() => sendWebhook(hook, SECRET, "push", push(), { signature: null }))
    assert.deepEqual(res.outcome, nothingWritten(401), res.body)
    assert.match(res.body, /X-Hub-Signature-256/)
  })

  it("rejects a webhook signed with another secret with 401", async () => {
    const body = JSON.stringify(push())
    const signature = await sign("not-the-secret", body)
    assert.deepEqual(
      (await attempt(() => sendWebhook(hook, SECRET, "push", undefined, { rawBody: body, signature }))).outcome,
      nothingWritten(401)
    )
  })

  it("rejects malformed signatures with 401", async () => {
    const body = JSON.stringify(push())
    const good = await sign(SECRET, body)
    for (
      const signature of [
        "garbage",
        good.slice("sha256=".length),
        good.toUpperCase(),
        "sha256=",
        `sha1=${good.slice(7)}`
      ]
    ) {
      assert.deepEqual(
        (await attempt(() => sendWebhook(hook, SECRET, "push", undefined, { rawBody: body, signature }))).outcome,
        nothingWritten(401)
      )
    }
  })

  it("rejects a truncated body (signature of the full body) with 401", async () => {
    const body = JSON.stringify(push())
    const signature = await sign(SECRET, body)
    const truncated = body.slice(0, Math.floor(body.length / 2))
    assert.deepEqual(
      (await attempt(() => sendWebhook(hook, SECRET, "push", undefined, { rawBody: truncated, signature }))).outcome,
      nothingWritten(401)
    )
  })

  it("rejects a body over 25 MB with 413 (Content-Length given)", async () => {
    const body = `{"pad":"${"x".repeat(LIMIT)}"}`
    const signature = await sign(SECRET, body)
    assert.deepEqual(
      (await attempt(() => sendWebhook(hook, SECRET, "push", undefined, { rawBody: body, signature }))).outcome,
      nothingWritten(413)
    )
  })

  it("rejects a chunked body that grows over 25 MB with 413", async () => {
    assert.deepEqual(
      (await attempt(() =>
        new Promise((resolve, reject) => {
          const req = request(hook, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "x-github-event": "push",
              "x-hub-signature-256": "sha256=00"
            }
          })
          req.on("response", (res) => {
            let body = ""
            res.on("data", (d: Buffer) => (body += d.toString()))
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
          })
          req.on("error", reject)
          const chunk = Buffer.alloc(1024 * 1024, "x")
          let sent = 0
          const write = () => {
            while (sent <= LIMIT + chunk.length) {
              sent += chunk.length
              if (!req.write(chunk)) return void req.once("drain", write)
            }
            req.end()
          }
          write()
        })
      )).outcome,
      nothingWritten(413)
    )
  })

  it("rejects a signed body that is not JSON with 400", async () => {
    const body = "{\"ref\": \"refs/heads/main\", \"after\": "
    const signature = await sign(SECRET, body)
    const res = await attempt(() => sendWebhook(hook, SECRET, "push", undefined, { rawBody: body, signature }))
    assert.deepEqual(res.outcome, nothingWritten(400), res.body)
    assert.match(res.body, /not JSON/)
  })

  it("rejects a signed push that lacks the fields a push has with 400", async () => {
    const payload = push()
    delete (payload as Record<string, unknown>)["after"]
    assert.deepEqual((await attempt(() => sendWebhook(hook, SECRET, "push", payload))).outcome, nothingWritten(400))
  })

  it("accepts but ignores events from unknown repositories (202)", async () => {
    const sha = randomSha()
    assert.deepEqual(
      (await attempt(() => sendWebhook(hook, SECRET, "push", push({ repo: "someone/else", sha })))).outcome,
      nothingWritten(202)
    )
    assert.deepEqual(
      (await attempt(() =>
        sendWebhook(
          hook,
          SECRET,
          "check_suite",
          examplePayload("check_suite", "requested", { repo: "someone/else", sha })
        )
      )).outcome,
      nothingWritten(202)
    )
    assert.deepEqual(
      (await attempt(() =>
        sendWebhook(
          hook,
          SECRET,
          "check_run",
          examplePayload("check_run", "requested_action", { repo: "someone/else", sha, requestedAction: "deploy" })
        )
      )).outcome,
      nothingWritten(202)
    )
    assert.deepEqual(
      (await attempt(() =>
        sendWebhook(hook, SECRET, "deployment", examplePayload("deployment", "created", { repo: "someone/else", sha }))
      )).outcome,
      nothingWritten(202)
    )
  })

  it("ignores events it does not act on with 202", async () => {
    assert.deepEqual(
      (await attempt(() =>
        sendWebhook(hook, SECRET, "issues", examplePayload("issues", "opened", { repo: "acme/shop" }))
      )).outcome,
      nothingWritten(202)
    )
    assert.deepEqual(
      (await attempt(() =>
        sendWebhook(
          hook,
          SECRET,
          "check_suite",
          examplePayload("check_suite", "completed", { repo: "acme/shop", sha: randomSha() })
        )
      )).outcome,
      nothingWritten(202)
    )
    assert.deepEqual(
      (await attempt(() =>
        sendWebhook(hook, SECRET, "push", examplePayload("push", undefined, { repo: "acme/shop", deleted: true }))
      )).outcome,
      nothingWritten(202)
    )
  })

  const notify = (app: string, body: unknown, token: string | null = TOKEN) => async () => {
    const res = await fetch(`${controller.url}/v1/apps/${app}/releases`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      body: typeof body === "string" ? body : JSON.stringify(body)
    })
    return { status: res.status, body: await res.text() }
  }

  it("rejects a notify with a missing or wrong token with 401", async () => {
    assert.deepEqual((await attempt(notify("shop", { sha: randomSha() }, null))).outcome, nothingWritten(401))
    assert.deepEqual((await attempt(notify("shop", { sha: randomSha() }, "wrong-token"))).outcome, nothingWritten(401))
    assert.deepEqual((await attempt(notify("shop", { sha: randomSha() }, `${TOKEN}x`))).outcome, nothingWritten(401))
    assert.deepEqual(
      (await attempt(notify("shop", { sha: randomSha() }, TOKEN.slice(0, -1)))).outcome,
      nothingWritten(401)
    )
  })

  it("rejects a notify with a bad sha or bad fields with 400", async () => {
    assert.deepEqual((await attempt(notify("shop", { sha: "abc123" }))).outcome, nothingWritten(400))
    assert.deepEqual((await attempt(notify("shop", { sha: `${randomSha()}0` }))).outcome, nothingWritten(400))
    assert.deepEqual((await attempt(notify("shop", { sha: "g".repeat(40) }))).outcome, nothingWritten(400))
    assert.deepEqual((await attempt(notify("shop", {}))).outcome, nothingWritten(400))
    assert.deepEqual((await attempt(notify("shop", "not json"))).outcome, nothingWritten(400))
    assert.deepEqual((await attempt(notify("shop", [randomSha()]))).outcome, nothingWritten(400))
    assert.deepEqual(
      (await attempt(notify("shop", { sha: randomSha(), artifact: "ftp://host/a.tgz" }))).outcome,
      nothingWritten(400)
    )
    assert.deepEqual((await attempt(notify("shop", { sha: randomSha(), sha256: "abc" }))).outcome, nothingWritten(400))
    assert.deepEqual(
      (await attempt(notify("shop", { sha: randomSha(), sha265: "a".repeat(64) }))).outcome,
      nothingWritten(400)
    )
  })

  it("rejects a notify for an unknown app with 404", async () => {
    assert.deepEqual((await attempt(notify("nosuchapp", { sha: randomSha() }))).outcome, nothingWritten(404))
    assert.deepEqual((await attempt(notify("Not_An_App", { sha: randomSha() }))).outcome, nothingWritten(404))
  })

  it("rejects status reads without the read token (401), including with CI's notify token", async () => {
    for (const path of ["/v1/apps", "/v1/apps/shop"]) {
      for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }] as Array<Record<string, string>>) {
        const res = await fetch(`${controller.url}${path}`, { headers })
        assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`)
        assert.equal(typeof ((await res.json()) as { error: unknown }).error, "string")
      }
      const read = await fetch(`${controller.url}${path}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })
      assert.notEqual(read.status, 401)
    }
  })

  it("logged every request with method, path, status and ms, and never a secret", async () => {
    const lines = controller.logs().split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l) as Record<string, unknown>
    )
    const requests = lines.filter((l) => l["msg"] === "http")
    assert.ok(
      requests.some((l) =>
        l["method"] === "POST" && l["path"] === "/github/webhook" && l["status"] === 401 && typeof l["ms"] === "number"
      )
    )
    assert.ok(requests.some((l) => l["path"] === "/v1/apps/shop/releases" && l["status"] === 400))
    const text = controller.logs()
    assert.ok(!text.includes(SECRET), "the webhook secret is not logged")
    assert.ok(!text.includes(TOKEN), "the notify token is not logged")
    assert.ok(!/sha256=[0-9a-f]{64}/.test(text), "signatures are not logged")
  })

  it("counted the rejections in /metrics", async () => {
    const metrics = await (await fetch(`${controller.url}/metrics`)).text()
    assert.match(metrics, /sacar_webhooks_total\{event="push",result="unauthorized"\} \d+/)
    assert.match(metrics, /sacar_webhooks_total\{event="push",result="bad_request"\} 2/)
    assert.match(metrics, /sacar_notify_total\{result="unauthorized"\} 4/)
    assert.match(metrics, /sacar_notify_total\{result="not_found"\} 2/)
  })
})
