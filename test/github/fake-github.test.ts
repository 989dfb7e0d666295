// The fake itself: it must catch what GitHub would reject, and its webhook helpers must
// produce deliveries a real receiver accepts.
import { verify } from "@octokit/webhooks-methods"
import assert from "node:assert/strict"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { test } from "node:test"
import { examplePayload, sendWebhook } from "../support/fake-github/index.ts"
import { APP_ID, fake, rsaKeys, SHA } from "./harness.ts"

const TOKEN = "ghp_fake00000000000000000000000000000000"
const keys = rsaKeys("pkcs8")

const raw = (url: string, method: string, path: string, body: unknown, auth: string | null = `token ${TOKEN}`) =>
  fetch(url + path, {
    method,
    headers: { "content-type": "application/json", "user-agent": "test", ...(auth ? { authorization: auth } : {}) },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {})
  })

test("fake: requests that break the schema or GitHub's unwritten rules get 422 and are recorded", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  const cases: Array<[string, string, unknown, RegExp]> = [
    ["POST", "/repos/acme/shop/statuses/" + SHA, { state: "green" }, /must be equal to one of the allowed values/],
    ["POST", "/repos/acme/shop/statuses/" + SHA, { context: "c" }, /must have required property 'state'/],
    [
      "POST",
      "/repos/acme/shop/statuses/" + SHA,
      { state: "success", description: "x".repeat(141) },
      /too long \(maximum is 140/
    ],
    ["POST", "/repos/acme/shop/deployments", { environment: "production" }, /required property 'ref'/],
    [
      "POST",
      "/repos/acme/shop/deployments/12/statuses",
      { state: "success", description: "y".repeat(141) },
      /too long/
    ],
    [
      "POST",
      "/repos/acme/shop/deployments/abc/statuses",
      { state: "success" },
      /path parameter deployment_id must be integer/
    ]
  ]
  for (const [method, path, body, problem] of cases) {
    const res = await raw(gh.url, method, path, body)
    assert.equal(res.status, 422, `${method} ${path} ${JSON.stringify(body).slice(0, 60)}`)
    const answer = (await res.json()) as { message: string; errors: Array<{ message: string }> }
    assert.match(answer.errors.map((e) => e.message).join("\n"), problem)
  }
  assert.equal(gh.violations.length, cases.length)
  assert.equal(gh.commitStatuses().length, 0)
  assert.equal(gh.deployments().length, 0)
})

test("fake: check-run rules (App auth), auth and routing", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: keys.publicKey }, token: TOKEN })
  // Mint an installation token the way auth-app does, with a hand-made JWT.
  const { createSign } = await import("node:crypto")
  const now = Math.floor(Date.now() / 1000)
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url")
  const unsigned = `${part({ alg: "RS256", typ: "JWT" })}.${part({ iat: now - 30, exp: now + 500, iss: APP_ID })}`
  const jwt = `${unsigned}.${createSign("RSA-SHA256").update(unsigned).sign(keys.privateKey).toString("base64url")}`
  const minted = await raw(gh.url, "POST", "/app/installations/1/access_tokens", {}, `Bearer ${jwt}`)
  assert.equal(minted.status, 201)
  const { token, expires_at } = (await minted.json()) as { token: string; expires_at: string }
  assert.ok(Date.parse(expires_at) > Date.now() + 3500_000)
  const auth = `token ${token}`

  const ok = await raw(gh.url, "POST", "/repos/acme/shop/check-runs", {
    name: "n",
    head_sha: SHA,
    status: "queued",
    output: { title: "t", summary: "s" }
  }, auth)
  assert.equal(ok.status, 201)
  const created = (await ok.json()) as { id: number; status: string; app: { id: number } }
  assert.equal(created.status, "queued")
  assert.equal(gh.violations.length, 0)

  const bad: Array<[unknown, RegExp]> = [
    [{ name: "n", head_sha: SHA, status: "completed", output: { title: "t", summary: "s" } }, /conclusion is required/],
    [{ name: "n", head_sha: SHA, conclusion: "stale" }, /only GitHub may set conclusion stale/],
    [{ name: "n", head_sha: SHA, output: { title: "t", summary: "é".repeat(40000) } }, /maximum bytesize of 65535/],
    [{ name: "n", head_sha: SHA, output: { summary: "s" } }, /required property 'title'/],
    [{ head_sha: SHA }, /required property 'name'/],
    [{
      name: "n",
      head_sha: SHA,
      actions: [1, 2, 3, 4].map((i) => ({ label: "l", description: "d", identifier: `i${i}` }))
    }, /at most 3/],
    [{ name: "n", head_sha: SHA, actions: [{ label: "l".repeat(21), description: "d", identifier: "i" }] }, /label/]
  ]
  for (const [body, problem] of bad) {
    const res = await raw(gh.url, "POST", "/repos/acme/shop/check-runs", body, auth)
    assert.equal(res.status, 422, JSON.stringify(body).slice(0, 80))
    assert.match(gh.violations.at(-1)?.problems.join("\n") ?? "", problem)
  }
  const update = await raw(gh.url, "PATCH", `/repos/acme/shop/check-runs/${created.id}`, { status: "completed" }, auth)
  assert.equal(update.status, 422)
  assert.equal(gh.violations.length, bad.length + 1)

  const before = gh.violations.length
  assert.equal(
    (await raw(gh.url, "POST", "/repos/acme/shop/check-runs", { name: "n", head_sha: SHA }, null)).status,
    401
  )
  assert.equal(
    (await raw(gh.url, "POST", "/repos/acme/shop/check-runs", { name: "n", head_sha: SHA }, "token nope")).status,
    401
  )
  assert.equal(
    (await raw(gh.url, "POST", "/repos/acme/shop/check-runs", { name: "n", head_sha: SHA }, `token ${TOKEN}`)).status,
    403
  )
  assert.equal((await raw(gh.url, "GET", "/repos/acme/shop/installation", undefined, auth)).status, 401)
  assert.equal((await raw(gh.url, "GET", "/repos/acme/shop/pulls", undefined, auth)).status, 404)
  assert.equal((await raw(gh.url, "POST", "/repos/acme/shop/check-runs", "{not json", auth)).status, 400)
  assert.equal(gh.violations.length, before + 6)
  assert.equal(gh.checkRuns().length, 1)
})

test("fake: examplePayload adapts real payloads; sendWebhook signs them verifiably", async (t) => {
  const push = examplePayload("push", undefined, {
    repo: "acme/shop",
    sha: SHA,
    ref: "main",
    sender: "octocat",
    installationId: 77
  })
  assert.equal((push["repository"] as { full_name: string }).full_name, "acme/shop")
  assert.equal((push["repository"] as { owner: { login: string } }).owner.login, "acme")
  assert.equal(push["ref"], "refs/heads/main")
  assert.equal(push["after"], SHA)
  assert.equal((push["head_commit"] as { id: string }).id, SHA)
  assert.equal((push["sender"] as { login: string }).login, "octocat")
  assert.deepEqual((push["installation"] as { id: number }).id, 77)
  const deletion = examplePayload("push", undefined, { repo: "acme/shop", ref: "gone", deleted: true })
  assert.equal(deletion["deleted"], true)
  assert.equal(deletion["ref"], "refs/heads/gone")

  const click = examplePayload("check_run", "requested_action", {
    repo: "acme/shop",
    sha: SHA,
    ref: "feature/x",
    requestedAction: "prepare"
  })
  assert.equal(click["action"], "requested_action")
  assert.deepEqual(click["requested_action"], { identifier: "prepare" })
  const run = click["check_run"] as { head_sha: string; check_suite: { head_sha: string; head_branch: string } }
  assert.equal(run.head_sha, SHA)
  assert.equal(run.check_suite.head_sha, SHA)
  assert.equal(run.check_suite.head_branch, "feature/x")

  const suite = examplePayload("check_suite", "requested", { sha: SHA, installationId: null })
  assert.equal((suite["check_suite"] as { head_sha: string }).head_sha, SHA)
  assert.equal(suite["installation"], undefined)

  const wr = examplePayload("workflow_run", "completed", {
    sha: SHA,
    merge: { workflow_run: { conclusion: "success" } }
  })
  assert.equal((wr["workflow_run"] as { conclusion: string; head_sha: string; path: string }).conclusion, "success")
  assert.equal(typeof (wr["workflow_run"] as { path: string }).path, "string")
  assert.equal((examplePayload("deployment", "created", { sha: SHA })["deployment"] as { sha: string }).sha, SHA)
  assert.throws(() => examplePayload("no_such_event"))

  const secret = "s3cret"
  const received: Array<{ ok: boolean; event: string | undefined; delivery: string | undefined; body: string }> = []
  const server = createServer((req, res) => {
    let body = ""
    req.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => {
      const sig = req.headers["x-hub-signature-256"]
      void (typeof sig === "string" ? verify(secret, body, sig) : Promise.resolve(false)).then((ok) => {
        received.push({
          ok,
          event: req.headers["x-github-event"] as string,
          delivery: req.headers["x-github-delivery"] as string,
          body
        })
        res.writeHead(ok ? 202 : 401).end()
      })
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  t.after(() => new Promise<void>((r) => server.close(() => r())))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/github/webhook`
  const good = await sendWebhook(url, secret, "push", push)
  assert.equal(good.status, 202)
  const again = await sendWebhook(url, secret, "push", push, { deliveryId: good.deliveryId })
  assert.equal(again.deliveryId, good.deliveryId)
  assert.equal((await sendWebhook(url, "wrong", "push", push)).status, 401)
  assert.equal((await sendWebhook(url, secret, "push", push, { signature: null })).status, 401)
  assert.deepEqual(received.map((r) => r.ok), [true, true, false, false])
  assert.equal(received[0]?.event, "push")
  assert.deepEqual(JSON.parse(received[0]?.body ?? ""), push)
})
