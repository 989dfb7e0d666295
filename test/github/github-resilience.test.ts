import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { APP_ID, appConfig, fake, rsaKeys, SHA, tokenConfig, withGitHub } from "./harness.ts"

const keys = rsaKeys("pkcs1")
const TOKEN = "ghp_resilience0000000000000000000000000"

const status = {
  owner: "acme",
  repo: "shop",
  sha: SHA,
  state: "success",
  context: "sacar/shop",
  description: "2 of 2 nodes ready"
} as const

test("a 500 is retried and the call then succeeds", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  gh.failNext(2, 500)
  await withGitHub(tokenConfig(gh.url, TOKEN), (github) => github.createCommitStatus(status))
  assert.deepEqual(gh.violations, [])
  assert.deepEqual(gh.requests.map((r) => r.status), [500, 500, 201])
  assert.equal(gh.commitStatuses().length, 1)
})

test("a 403 secondary rate limit with Retry-After is waited out, then retried", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: keys.publicKey } })
  gh.failNext(1, 403, { "retry-after": "1" }, { operationId: "checks/create" })
  const started = Date.now()
  await withGitHub(
    appConfig(gh.url, keys.privateKey),
    (github) =>
      github.createCheckRun({
        owner: "acme",
        repo: "shop",
        name: "sacar/shop",
        headSha: SHA,
        status: "queued",
        title: "t",
        summary: "s"
      })
  )
  const creates = gh.requests.filter((r) => r.operationId === "checks/create")
  assert.deepEqual(creates.map((r) => r.status), [403, 201])
  const waited = (creates[1]?.at ?? 0) - (creates[0]?.at ?? 0)
  assert.ok(waited >= 950, `waited ${waited} ms, Retry-After said 1 s`)
  assert.ok(Date.now() - started < 5000)
  assert.deepEqual(gh.violations, [])
  assert.equal(gh.checkRuns().length, 1)
})

test("GitHub refusing connections for a while: the call succeeds once it is back", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: keys.publicKey } })
  await withGitHub(appConfig(gh.url, keys.privateKey), (github) =>
    Effect.gen(function*() {
      // Warm up: installation and token known, connections kept alive.
      yield* github.createCommitStatus(status)
      yield* Effect.promise(() => gh.down(1200, "refuse"))
      const started = Date.now()
      yield* github.createCommitStatus({ ...status, state: "pending" })
      assert.ok(Date.now() - started >= 1000, "the call waited for GitHub to come back")
    }))
  assert.deepEqual(gh.violations, [])
  assert.deepEqual(gh.commitStatuses().map((s) => s.state), ["success", "pending"])
})

test("GitHub answering 503 for a while: the call succeeds once it is back", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  await withGitHub(
    tokenConfig(gh.url, TOKEN),
    (github) =>
      // GitHub goes down once the client is built, so the whole second is the call's.
      Effect.promise(() => gh.down(1000, "503")).pipe(Effect.andThen(github.createDeployment({
        owner: "acme",
        repo: "shop",
        ref: SHA,
        environment: "production",
        description: "d",
        payload: {}
      })))
  )
  assert.deepEqual(gh.violations, [])
  assert.ok(gh.requests.filter((r) => r.status === 503).length >= 2)
  assert.equal(gh.deployments().length, 1)
})

test("a GitHub that stays broken ends in a retryable GitHubError after the configured retries", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  gh.failNext(100, 502)
  const tuning = { writeIntervalMs: 0, retryBaseMs: 10, retries: 2 }
  const result = await withGitHub(
    tokenConfig(gh.url, TOKEN, tuning),
    (github) => Effect.result(github.createCommitStatus(status))
  )
  assert.ok(result._tag === "Failure")
  assert.equal(result.failure.status, 502)
  assert.equal(result.failure.retryable, true)
  assert.equal(result.failure.operation, "createCommitStatus")
  assert.equal(gh.requests.length, 3) // first try + 2 retries
  assert.deepEqual(gh.violations, [])
})

test("a request GitHub rejects (422) fails at once, not retryable", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  const result = await withGitHub(
    tokenConfig(gh.url, TOKEN),
    (github) => Effect.result(github.createCommitStatus({ ...status, sha: "not-a-sha" }))
  )
  assert.ok(result._tag === "Failure")
  assert.equal(result.failure.status, 422)
  assert.equal(result.failure.retryable, false)
  assert.equal(gh.requests.length, 1)
  assert.equal(gh.violations.length, 1)
})

test("writes of one service are spaced by writeIntervalMs; two services do not wait for each other", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  // Gaps are seen where the fake receives the writes, so transit delays on a loaded
  // machine blur them; a 1 s interval leaves room for that and still tells queues apart.
  const tuning = { writeIntervalMs: 1000, retryBaseMs: 50, retries: 2 }
  const three = (state: "pending" | "success") => (github: Parameters<Parameters<typeof withGitHub>[1]>[0]) =>
    Effect.forEach([1, 2, 3], (i) => github.createCommitStatus({ ...status, state, context: `c${i}` }), {
      concurrency: "unbounded"
    })
  await Promise.all([
    withGitHub(tokenConfig(gh.url, TOKEN, tuning), three("pending")),
    withGitHub(tokenConfig(gh.url, TOKEN, tuning), three("success"))
  ])
  for (const state of ["pending", "success"]) {
    const at = gh.requests.filter((r) => (r.body as { state?: string }).state === state).map((r) => r.at)
    assert.equal(at.length, 3)
    for (let i = 1; i < at.length; i++)
      assert.ok((at[i] ?? 0) - (at[i - 1] ?? 0) >= 600, `gap ${(at[i] ?? 0) - (at[i - 1] ?? 0)} ms`)
  }
  // Sharing one queue would take 5 gaps (5 s); separate queues take 2 gaps each, side by side.
  const span = (gh.requests.at(-1)?.at ?? 0) - (gh.requests[0]?.at ?? 0)
  assert.ok(span < 4000, `writes spanned ${span} ms`)
  assert.deepEqual(gh.violations, [])
})

test("interrupting a call while GitHub is down stops it promptly", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  await gh.down(5000, "refuse")
  const started = Date.now()
  const result = await withGitHub(
    tokenConfig(gh.url, TOKEN),
    (github) => Effect.result(github.createCommitStatus(status).pipe(Effect.timeout("300 millis")))
  )
  assert.ok(result._tag === "Failure")
  assert.ok(Date.now() - started < 2500, "the call did not wait for GitHub to come back")
})

test("a primary rate limit is waited out when it resets soon, and fails retryable when it does not", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  const limited = (resetInSec: number) => ({
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + resetInSec)
  })
  const message = { message: "API rate limit exceeded for user ID 1." }
  gh.failNext(1, 403, limited(1), message)
  await withGitHub(tokenConfig(gh.url, TOKEN), (github) => github.createCommitStatus(status))
  assert.deepEqual(gh.requests.map((r) => r.status), [403, 201])

  gh.failNext(1, 403, limited(3600), message)
  const result = await withGitHub(
    tokenConfig(gh.url, TOKEN),
    (github) => Effect.result(github.createCommitStatus(status))
  )
  assert.ok(result._tag === "Failure")
  assert.equal(result.failure.status, 403)
  assert.equal(result.failure.retryable, true)
  assert.match(result.failure.message, /rate limit/)
  assert.equal(gh.requests.length, 3)
  assert.deepEqual(gh.violations, [])
})
