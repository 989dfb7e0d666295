// The controller's pure decisions, without a server: which workflow runs count as the
// build, which Deployments are Sacar's own mirror, what a notify body may hold, and the
// bearer check.
import { Redacted } from "effect"
import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { checkBearer } from "../../src/controller/api/bearer.ts"
import { parseNotifyBody } from "../../src/controller/api/notify.ts"
import type { HttpRequest } from "../../src/controller/http/types.ts"
import { isOwnDeployment, workflowMatches } from "../../src/controller/webhook/handlers.ts"

const SHA = "0123456789abcdef0123456789abcdef01234567"

describe("workflowMatches", () => {
  it("matches the run name, the workflow file, or the file without its extension", () => {
    assert.ok(workflowMatches("build", ["build", undefined]))
    assert.ok(workflowMatches("build", ["Build and upload", ".github/workflows/build.yml"]))
    assert.ok(workflowMatches("build", [null, ".github/workflows/build.yaml"]))
    assert.ok(workflowMatches("build.yml", [null, ".github/workflows/build.yml"]))
    assert.ok(workflowMatches("Build and upload", ["Build and upload"]))
  })
  it("does not match other workflows or empty names", () => {
    assert.ok(!workflowMatches("build", ["lint", ".github/workflows/lint.yml"]))
    assert.ok(!workflowMatches("build", ["", null, undefined]))
    assert.ok(!workflowMatches("build", ["rebuild", ".github/workflows/prebuild.yml"]))
  })
})

describe("isOwnDeployment", () => {
  const base = { id: 1, sha: SHA, environment: "production" }
  it("recognises the leader's Deployments", () => {
    assert.ok(isOwnDeployment(undefined, { ...base, payload: { sacar: { app: "shop", generation: 3 } } }))
    assert.ok(isOwnDeployment(undefined, { ...base, payload: "{\"sacar\":{\"app\":\"shop\",\"generation\":3}}" }))
    assert.ok(isOwnDeployment("4711", { ...base, performed_via_github_app: { id: 4711 } }))
  })
  it("treats other Deployments as requests", () => {
    assert.ok(!isOwnDeployment(undefined, { ...base, payload: {} }))
    assert.ok(!isOwnDeployment(undefined, { ...base, payload: "not json" }))
    assert.ok(!isOwnDeployment(undefined, { ...base, payload: { app: "shop", generation: 3 } }))
    assert.ok(!isOwnDeployment(undefined, { ...base, description: "sacar: shop 0123456 (generation 3)" }))
    assert.ok(!isOwnDeployment("4711", { ...base, performed_via_github_app: { id: 15368 } }))
    assert.ok(
      !isOwnDeployment(undefined, { ...base, performed_via_github_app: { id: 4711 }, description: "deploy it" })
    )
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
