// The controller's pure decisions, without a server: which workflow runs count as the
// build, which Deployments are Sacar's own mirror, what a notify body may hold, and the
// bearer check.
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { checkBearer } from "../../src/controller/api/bearer.ts"
import { parseNotifyBody } from "../../src/controller/api/notify.ts"
import type { HttpRequest } from "../../src/controller/http/types.ts"
import { isOwnDeployment, notABuild, notADeployOrder, workflowMatches } from "../../src/controller/webhook/handlers.ts"
import { DeploymentPayload } from "../../src/controller/webhook/payloads.ts"
import { examplePayload } from "../support/fake-github/webhooks.ts"

const SHA = "0123456789abcdef0123456789abcdef01234567"

describe("workflowMatches", () => {
  it("matches the workflow file, its base name, or the base name without its extension", () => {
    assert.ok(workflowMatches("build", ".github/workflows/build.yml"))
    assert.ok(workflowMatches("build", ".github/workflows/build.yaml"))
    assert.ok(workflowMatches("build.yml", ".github/workflows/build.yml"))
    assert.ok(workflowMatches(".github/workflows/build.yml", ".github/workflows/build.yml"))
  })
  it("does not match other workflows, empty paths, or a run's display name", () => {
    assert.ok(!workflowMatches("build", ".github/workflows/lint.yml"))
    assert.ok(!workflowMatches("build", ""))
    assert.ok(!workflowMatches("build", null))
    assert.ok(!workflowMatches("build", ".github/workflows/prebuild.yml"))
    // A pull request's workflow file may set `name: Build and upload`: names never count.
    assert.ok(!workflowMatches("Build and upload", ".github/workflows/pr.yml"))
  })
})

describe("notABuild", () => {
  const run = (over: Record<string, unknown>) =>
    ({
      head_sha: SHA,
      event: "push",
      head_repository: { full_name: "acme/shop" },
      ...over
    }) as Parameters<typeof notABuild>[1]
  it("takes a push run of the repository itself (names compared case-insensitively)", () => {
    assert.equal(notABuild("acme/shop", run({})), undefined)
    assert.equal(notABuild("Acme/Shop", run({})), undefined)
  })
  it("refuses a fork's run, a pull request's run and runs without a head repository", () => {
    assert.match(notABuild("acme/shop", run({ head_repository: { full_name: "mallory/shop" } }))!, /mallory\/shop/)
    assert.match(notABuild("acme/shop", run({ event: "pull_request" }))!, /pull_request/)
    assert.match(notABuild("acme/shop", run({ event: "pull_request_target" }))!, /pull_request_target/)
    assert.ok(notABuild("acme/shop", run({ head_repository: null })) !== undefined)
  })
})

describe("isOwnDeployment", () => {
  const base = { id: 1, sha: SHA, environment: "production" }
  it("recognises the leader's Deployments", () => {
    assert.ok(isOwnDeployment(undefined, { ...base, payload: { sacar: { app: "shop", generation: 3 } } }))
    assert.ok(isOwnDeployment(undefined, { ...base, payload: "{\"sacar\":{\"app\":\"shop\",\"generation\":3}}" }))
    assert.ok(isOwnDeployment("4711", { ...base, performed_via_github_app: { id: 4711 } }))
  })
  it("does not take other Deployments for its own", () => {
    assert.ok(!isOwnDeployment(undefined, { ...base, payload: {} }))
    assert.ok(!isOwnDeployment(undefined, { ...base, payload: "not json" }))
    assert.ok(!isOwnDeployment(undefined, { ...base, payload: { app: "shop", generation: 3 } }))
    assert.ok(!isOwnDeployment("4711", { ...base, performed_via_github_app: { id: 15368 } }))
  })
})

describe("notADeployOrder (payloads from @octokit/webhooks-examples)", () => {
  const decodeDeployment = (p: unknown) => Schema.decodeUnknownSync(DeploymentPayload)(p)
  const byPerson = (e: Record<string, unknown>) => !("workflow_run" in e)
  it("a Deployment a person created with task deploy is an order", () => {
    const p = examplePayload("deployment", "created", { repo: "acme/shop", sha: SHA, pick: byPerson })
    assert.equal(notADeployOrder(undefined, decodeDeployment(p)), undefined)
  })
  it("a Deployment GitHub Actions created for a job's environment is not", () => {
    const p = examplePayload("deployment", "created", { repo: "acme/shop", sha: SHA, pick: (e) => "workflow_run" in e })
    assert.match(notADeployOrder(undefined, decodeDeployment(p))!, /workflow run/)
  })
  it("a Deployment made by another GitHub App, a bot, or with another task is not", () => {
    const base = examplePayload("deployment", "created", { repo: "acme/shop", sha: SHA, pick: byPerson })
    const variants: ReadonlyArray<Record<string, unknown>> = [
      { deployment: { performed_via_github_app: { id: 15368 } } },
      { deployment: { creator: { login: "renovate[bot]", type: "Bot" } } },
      { deployment: { task: "deploy:migrations" } }
    ]
    for (const merge of variants) {
      const p = examplePayload("deployment", "created", { repo: "acme/shop", sha: SHA, pick: byPerson, merge })
      assert.notEqual(notADeployOrder(undefined, decodeDeployment(p)), undefined, JSON.stringify(merge))
    }
    assert.equal(notADeployOrder(undefined, decodeDeployment(base)), undefined)
  })
})

describe("parseNotifyBody", () => {
  it("accepts the contract's fields and normalises hex to lower case", () => {
    assert.deepEqual(
      parseNotifyBody(
        JSON.stringify({
          sha: SHA.toUpperCase(),
          sha256: "AB".repeat(32),
          artifact: "gs://b/x.tgz",
          ref: "refs/heads/main"
        })
      ),
      {
        sha: SHA,
        sha256: "ab".repeat(32),
        artifact: "gs://b/x.tgz",
        ref: "refs/heads/main"
      }
    )
  })
  it("names the field that is wrong", () => {
    assert.match(parseNotifyBody("{") as string, /not JSON/)
    assert.match(parseNotifyBody("null") as string, /JSON object/)
    assert.match(parseNotifyBody(JSON.stringify({ sha: SHA.slice(1) })) as string, /"sha"/)
    assert.match(parseNotifyBody(JSON.stringify({ sha: SHA, sha256: "x" })) as string, /"sha256"/)
    assert.match(parseNotifyBody(JSON.stringify({ sha: SHA, artifact: 3 })) as string, /"artifact"/)
    assert.match(parseNotifyBody(JSON.stringify({ sha: SHA, ref: "" })) as string, /"ref"/)
    assert.match(parseNotifyBody(JSON.stringify({ sha: SHA, checksum: "x" })) as string, /unknown field "checksum"/)
  })
})

describe("checkBearer", () => {
  const req = (authorization?: string): HttpRequest => ({
    method: "GET",
    path: "/v1/apps",
    query: new URLSearchParams(),
    headers: authorization === undefined ? {} : { authorization },
    body: Buffer.alloc(0)
  })
  const token = Redacted.make("s3cret")
  it("lets the right token through, any case of the scheme", () => {
    assert.equal(checkBearer(token, req("Bearer s3cret")), undefined)
    assert.equal(checkBearer(token, req("bearer s3cret")), undefined)
  })
  it("answers 401 for a missing, malformed or wrong token, and 503 when off", () => {
    for (
      const h of [undefined, "", "Basic czNjcmV0", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Bearer s3cret extra"]
    ) {
      assert.equal(checkBearer(token, req(h))?.status, 401, String(h))
    }
    assert.equal(checkBearer(undefined, req("Bearer s3cret"))?.status, 503)
  })
})
