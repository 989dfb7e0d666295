import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import assert from "node:assert/strict"
import { test } from "node:test"
import type { GitHubError } from "../../src/github/errors.ts"
import { APP_ID, appConfig, exitWithGitHub, fake, rsaKeys, SHA, withGitHub } from "./harness.ts"

const pkcs1 = rsaKeys("pkcs1")

const actions = [
  { label: "Deploy", description: "Deploy this commit to production", identifier: "deploy" },
  { label: "Prepare", description: "Prepare on all nodes", identifier: "prepare" }
]

test("app mode: check run created with buttons, then updated; installation looked up once, one token", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey }, installations: { "acme/shop": 77 } })
  const id = await withGitHub(appConfig(gh.url, pkcs1.privateKey), (github) =>
    Effect.gen(function*() {
      assert.equal(github.mode, "app")
      const { id } = yield* github.createCheckRun({
        owner: "acme",
        repo: "shop",
        name: "sacar/shop",
        headSha: SHA,
        status: "in_progress",
        title: "0 of 3 nodes ready",
        summary: "Preparing",
        detailsUrl: "https://sacar.example/v1/apps/shop",
        externalId: "shop@" + SHA
      })
      yield* github.updateCheckRun({
        owner: "acme",
        repo: "shop",
        checkRunId: id,
        status: "completed",
        conclusion: "success",
        title: "3 of 3 nodes ready",
        summary: "All nodes ready",
        text: "node-a ready\nnode-b ready\nnode-c ready",
        actions
      })
      // Same repository, different case: GitHub names are case-insensitive, no second lookup.
      yield* github.createCheckRun({
        owner: "ACME",
        repo: "Shop",
        name: "sacar/other",
        headSha: SHA,
        status: "queued",
        title: "t",
        summary: "s"
      })
      return id
    }))

  assert.deepEqual(gh.violations, [])
  const run = gh.checkRuns().find((r) => r.id === id)
  assert.ok(run)
  assert.equal(run.installationId, 77)
  assert.equal(run.status, "completed")
  assert.equal(run.conclusion, "success")
  assert.equal(run.output.title, "3 of 3 nodes ready")
  assert.equal(run.details_url, "https://sacar.example/v1/apps/shop")
  assert.equal(run.external_id, "shop@" + SHA)
  assert.deepEqual(run.actions, actions)
  assert.deepEqual(run.history.map((h) => h.operation), ["create", "update"])
  assert.equal(run.history[0]?.body["status"], "in_progress")
  assert.equal(gh.requests.filter((r) => r.operationId === "apps/get-repo-installation").length, 1)
  assert.equal(gh.issuedTokens().length, 1)
  // No request carried a credential in clear in the fake's log either.
  assert.ok(gh.requests.every((r) => !/ghs_/.test(r.headers["authorization"] ?? "")))
})

test("app mode: installation id from the webhook is used without a lookup", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey }, installations: { "acme/shop": 9 } })
  await withGitHub(
    appConfig(gh.url, pkcs1.privateKey),
    (github) =>
      github.createCheckRun({
        owner: "acme",
        repo: "shop",
        installationId: 9,
        name: "sacar/shop",
        headSha: SHA,
        status: "queued",
        title: "t",
        summary: "s"
      })
  )
  assert.deepEqual(gh.violations, [])
  assert.equal(gh.requests.filter((r) => r.operationId === "apps/get-repo-installation").length, 0)
  assert.equal(gh.checkRuns()[0]?.installationId, 9)
})

test("app mode: deployment with exact sha, then statuses", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey } })
  const deploymentId = await withGitHub(appConfig(gh.url, pkcs1.privateKey), (github) =>
    Effect.gen(function*() {
      const { id } = yield* github.createDeployment({
        owner: "acme",
        repo: "shop",
        ref: SHA,
        environment: "production",
        description: "sacar deploy shop",
        payload: { app: "shop", requestedBy: "octocat" }
      })
      yield* github.createDeploymentStatus({
        owner: "acme",
        repo: "shop",
        deploymentId: id,
        state: "in_progress",
        description: "0 of 2 nodes",
        environment: "production"
      })
      yield* github.createDeploymentStatus({
        owner: "acme",
        repo: "shop",
        deploymentId: id,
        state: "success",
        description: "x".repeat(300),
        environment: "production",
        logUrl: "https://sacar.example/v1/apps/shop"
      })
      yield* github.createDeployment({
        owner: "acme",
        repo: "shop",
        ref: SHA,
        environment: "staging",
        description: "d",
        payload: {}
      })
      return id
    }))
  assert.deepEqual(gh.violations, [])
  const [prod, staging] = gh.deployments()
  assert.ok(prod && staging)
  assert.equal(prod.id, deploymentId)
  assert.equal(prod.sha, SHA)
  assert.equal(prod.body["auto_merge"], false)
  assert.deepEqual(prod.body["required_contexts"], [])
  assert.equal(prod.body["production_environment"], true)
  assert.equal(staging.body["production_environment"], false)
  assert.deepEqual(prod.payload, { app: "shop", requestedBy: "octocat" })
  assert.deepEqual(prod.statuses.map((s) => s.state), ["in_progress", "success"])
  assert.equal(Array.from(prod.statuses[1]?.description ?? "").length, 140)
  assert.equal(prod.statuses[1]?.log_url, "https://sacar.example/v1/apps/shop")
})

test("app mode: PKCS#8 key works, commit status too", async (t) => {
  const pkcs8 = rsaKeys("pkcs8")
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs8.publicKey } })
  await withGitHub(
    appConfig(gh.url, pkcs8.privateKey),
    (github) =>
      github.createCommitStatus({
        owner: "acme",
        repo: "shop",
        sha: SHA,
        state: "pending",
        context: "sacar/shop",
        description: "1 of 2 nodes ready"
      })
  )
  assert.deepEqual(gh.violations, [])
  assert.equal(gh.commitStatuses()[0]?.context, "sacar/shop")
})

test("app mode: a JWT signed with the wrong key is refused (401, not retried)", async (t) => {
  const other = rsaKeys("pkcs1")
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey } })
  const exit = await exitWithGitHub(
    appConfig(gh.url, other.privateKey),
    (github) => github.installationFor("acme", "shop")
  )
  assert.ok(Exit.isFailure(exit))
  const err = exit.cause.reasons[0]
  assert.ok(err?._tag === "Fail")
  const e = err.error as GitHubError
  assert.equal(e._tag, "GitHubError")
  assert.equal(e.operation, "installationFor")
  assert.equal(e.status, 401)
  assert.equal(e.retryable, false)
  assert.match(gh.violations[0]?.problems[0] ?? "", /Signature/)
  assert.equal(gh.requests.length, 1)
})

test("app mode: not installed on the repository is a clear 404", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey }, defaultInstallationId: null })
  const exit = await exitWithGitHub(
    appConfig(gh.url, pkcs1.privateKey),
    (github) =>
      github.createCommitStatus({
        owner: "acme",
        repo: "nope",
        sha: SHA,
        state: "success",
        context: "c",
        description: "d"
      })
  )
  assert.ok(Exit.isFailure(exit))
  const e = (exit.cause.reasons[0] as { error: GitHubError }).error
  assert.equal(e.status, 404)
  assert.match(e.message, /not installed on acme\/nope/)
  assert.deepEqual(gh.violations, [])
})

test("app mode: installation tokens are renewed shortly before they expire", async (t) => {
  // 4-minute tokens are inside the 5-minute renewal margin: every call mints a new one.
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey }, tokenTtlSec: 240 })
  await withGitHub(appConfig(gh.url, pkcs1.privateKey), (github) =>
    Effect.gen(function*() {
      yield* github.createCommitStatus({
        owner: "acme",
        repo: "shop",
        sha: SHA,
        state: "pending",
        context: "c",
        description: "d"
      })
      yield* github.createCommitStatus({
        owner: "acme",
        repo: "shop",
        sha: SHA,
        state: "success",
        context: "c",
        description: "d"
      })
    }))
  assert.deepEqual(gh.violations, [])
  assert.equal(gh.issuedTokens().length, 2)
})

test("limits: oversized output is cut to 65535 bytes, bad actions and missing conclusions are not sent", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey } })
  const huge = "é".repeat(40_000) // 80 000 bytes, 40 000 characters
  const results = await withGitHub(appConfig(gh.url, pkcs1.privateKey), (github) =>
    Effect.gen(function*() {
      yield* github.createCheckRun({
        owner: "acme",
        repo: "shop",
        name: "sacar/shop",
        headSha: SHA,
        status: "completed",
        conclusion: "failure",
        title: "  multi\nline   title ",
        summary: huge,
        text: huge,
        actions: [{ label: "A label longer than twenty", description: "d".repeat(60), identifier: "deploy" }]
      })
      const tooMany = yield* Effect.result(github.createCheckRun({
        owner: "acme",
        repo: "shop",
        name: "n",
        headSha: SHA,
        status: "completed",
        conclusion: "success",
        title: "t",
        summary: "s",
        actions: [...actions, ...actions]
      }))
      const longId = yield* Effect.result(github.createCheckRun({
        owner: "acme",
        repo: "shop",
        name: "n",
        headSha: SHA,
        status: "queued",
        title: "t",
        summary: "s",
        actions: [{ label: "x", description: "y", identifier: "an-identifier-too-long" }]
      }))
      const noConclusion = yield* Effect.result(
        github.updateCheckRun({
          owner: "acme",
          repo: "shop",
          checkRunId: 1,
          status: "completed",
          title: "t",
          summary: "s"
        })
      )
      return [tooMany, longId, noConclusion]
    }))
  assert.deepEqual(gh.violations, [])
  const run = gh.checkRuns()[0]
  assert.ok(run)
  assert.equal(run.output.title, "multi line title")
  assert.ok(Buffer.byteLength(run.output.summary ?? "") <= 65535)
  assert.ok(Buffer.byteLength(run.output.summary ?? "") > 65000)
  assert.match(run.output.summary ?? "", /cut by Sacar: 80000 bytes/)
  assert.equal(run.actions[0]?.label.length, 20)
  assert.equal(run.actions[0]?.description.length, 40)
  for (const r of results) {
    assert.ok(r._tag === "Failure")
    assert.equal(r.failure.status, 422)
    assert.equal(r.failure.retryable, false)
    assert.match(r.failure.message, /^not sent: /)
  }
  assert.equal(gh.checkRuns().length, 1)
})

test("app mode: a failing installation lookup or token mint is retried like any call", async (t) => {
  const gh = await fake(t, { app: { appId: APP_ID, publicKey: pkcs1.publicKey } })
  gh.failNext(1, 502, {}, { operationId: "apps/get-repo-installation" })
  gh.failNext(1, 500, {}, { operationId: "apps/create-installation-access-token" })
  await withGitHub(
    appConfig(gh.url, pkcs1.privateKey),
    (github) =>
      github.createCheckRun({
        owner: "acme",
        repo: "shop",
        name: "n",
        headSha: SHA,
        status: "queued",
        title: "t",
        summary: "s"
      })
  )
  assert.deepEqual(gh.requests.map((r) => `${r.operationId} ${r.status}`), [
    "apps/get-repo-installation 502",
    "apps/get-repo-installation 200",
    "apps/create-installation-access-token 500",
    "apps/create-installation-access-token 201",
    "checks/create 201"
  ])
  assert.deepEqual(gh.violations, [])
})
