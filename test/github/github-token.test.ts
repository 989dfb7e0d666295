import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { fake, SHA, tokenConfig, withGitHub } from "./harness.ts"

const TOKEN = "ghp_tokenmode000000000000000000000000000"

test("token mode: commit statuses and deployments; check runs refused before sending", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  const result = await withGitHub(tokenConfig(gh.url, TOKEN), (github) =>
    Effect.gen(function*() {
      assert.equal(github.mode, "token")
      yield* github.createCommitStatus({
        owner: "acme",
        repo: "shop",
        sha: SHA,
        state: "pending",
        context: "sacar/shop",
        description: "1 of 3 nodes ready " + "·".repeat(200),
        targetUrl: "https://sacar.example/v1/apps/shop"
      })
      const { id } = yield* github.createDeployment({
        owner: "acme",
        repo: "shop",
        ref: SHA,
        environment: "production",
        description: "deploy",
        payload: { app: "shop" }
      })
      yield* github.createDeploymentStatus({
        owner: "acme",
        repo: "shop",
        deploymentId: id,
        state: "failure",
        description: "node-b failed",
        environment: "production"
      })
      const check = yield* Effect.result(
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
      const installation = yield* Effect.result(github.installationFor("acme", "shop"))
      return { check, installation }
    }))
  assert.deepEqual(gh.violations, [])
  const [s] = gh.commitStatuses()
  assert.ok(s)
  assert.equal(s.state, "pending")
  assert.equal(s.target_url, "https://sacar.example/v1/apps/shop")
  assert.equal(Array.from(s.description ?? "").length, 140)
  assert.ok(s.description?.endsWith("…"))
  assert.deepEqual(gh.deployments()[0]?.statuses.map((x) => x.state), ["failure"])
  assert.ok(result.check._tag === "Failure")
  assert.equal(result.check.failure.status, 403)
  assert.match(result.check.failure.message, /App mode/)
  assert.ok(result.installation._tag === "Failure")
  // Every request carried the token, and only as "token …".
  assert.ok(gh.requests.every((r) => r.headers["authorization"] === "token [REDACTED]"))
  assert.equal(gh.requests.length, 3)
})

test("token mode: a rejected token is a 401 GitHubError that does not contain the token", async (t) => {
  const gh = await fake(t, { token: TOKEN })
  const wrong = "ghp_wrongwrongwrongwrongwrongwrongwrong0"
  const result = await withGitHub(
    tokenConfig(gh.url, wrong),
    (github) =>
      Effect.result(
        github.createCommitStatus({
          owner: "acme",
          repo: "shop",
          sha: SHA,
          state: "success",
          context: "c",
          description: "d"
        })
      )
  )
  assert.ok(result._tag === "Failure")
  assert.equal(result.failure.status, 401)
  assert.equal(result.failure.retryable, false)
  assert.ok(!JSON.stringify(result.failure).includes(wrong))
  assert.ok(!String(result.failure.message).includes(wrong))
  assert.equal(gh.requests.length, 1)
})
