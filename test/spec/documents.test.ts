import * as Result from "effect/Result"
import assert from "node:assert/strict"
import { test } from "node:test"
import { decodeDocument, encodeDocument } from "../../src/spec/decode.ts"
import {
  AppConfig,
  DeploySpec,
  LockDoc,
  NodeRegistration,
  NodeStatus,
  PinDoc,
  ReleaseSpec
} from "../../src/spec/documents.ts"

const SHA = "0123456789abcdef0123456789abcdef01234567"
const SHA256 = "a".repeat(64)

// The examples of the contract (section 3), with its placeholders filled in.
const examples = {
  AppConfig: {
    repo: "acme/shop",
    branch: "main",
    artifact: "gs://acme-builds/shop/{sha}.tgz",
    nodes: ["web-*"],
    autoDeploy: false,
    keepReleases: 5,
    maxParallel: 1,
    prepareTimeout: "15m",
    deployTimeout: "5m",
    environment: "production",
    githubDeployments: false,
    buildWorkflow: "build"
  },
  LockDoc: { by: "alice", reason: "black friday freeze", at: "2026-11-27T09:00:00Z", until: "2026-11-30T00:00:00Z" },
  PinDoc: { sha: SHA, by: "alice", reason: "rollback", at: "2026-11-27T09:00:00Z" },
  NodeRegistration: {
    node: "web-1",
    version: "0.1.0",
    startedAt: "2026-11-27T08:00:00Z",
    root: "/var/lib/sacar",
    pythons: ["3.11", "3.12"]
  },
  ReleaseSpec: {
    artifact: { url: `gs://acme-builds/shop/${SHA}.tgz`, sha256: SHA256 },
    ref: "refs/heads/main",
    createdAt: "2026-11-27T10:00:00Z",
    source: "github"
  },
  DeploySpec: { sha: SHA, requestedBy: "octocat", requestedAt: "2026-11-27T10:05:00Z" },
  NodeStatus: {
    node: "web-1",
    updatedAt: "2026-11-27T10:01:02Z",
    releases: {
      [SHA]: {
        phase: "ready",
        message: "prepared in 41.2s",
        attempt: 1,
        startedAt: "2026-11-27T10:00:20Z",
        finishedAt: "2026-11-27T10:01:01Z",
        steps: {
          download: { ms: 812 },
          extract: { ms: 390 },
          lock: { ms: 1 },
          venv: { ms: 2100 },
          install: { ms: 30111 },
          prepare: { ms: 7800 }
        },
        log: "last lines of the failing step's output, at most 4 KiB"
      }
    },
    current: SHA,
    deploy: { generation: 1234, sha: SHA, phase: "live", message: "...", finishedAt: "2026-11-27T10:06:00Z" }
  }
}

const schemas = { AppConfig, LockDoc, PinDoc, NodeRegistration, ReleaseSpec, DeploySpec, NodeStatus }

for (const [name, doc] of Object.entries(examples)) {
  test(`the contract's ${name} example decodes and survives a round trip`, () => {
    const schema = schemas[name as keyof typeof schemas]
    const decoded = decodeDocument(schema, name, `sacar/shop/x`, JSON.stringify(doc))
    assert.ok(Result.isSuccess(decoded), Result.isFailure(decoded) ? decoded.failure.message : "")
    const again = decodeDocument(schema, name, "k", encodeDocument(schema as never, decoded.success as never))
    assert.ok(Result.isSuccess(again))
    assert.deepEqual(again.success, decoded.success)
  })
}

test("the minimal documents operators write by hand decode with the contract's defaults", () => {
  const config = decodeDocument(
    AppConfig,
    "AppConfig",
    "sacar/shop/config",
    "{\"artifact\":\"file:///srv/{app}/{sha}.tgz\"}"
  )
  assert.ok(Result.isSuccess(config))
  assert.deepEqual(
    {
      nodes: config.success.nodes,
      branch: config.success.branch,
      keep: config.success.keepReleases,
      par: config.success.maxParallel,
      env: config.success.environment
    },
    { nodes: ["*"], branch: "main", keep: 5, par: 1, env: "production" }
  )
  const release = decodeDocument(ReleaseSpec, "ReleaseSpec", `sacar/shop/releases/${SHA}`, "{}")
  assert.ok(Result.isSuccess(release))
  assert.deepEqual(release.success, {})
  const plain = decodeDocument(ReleaseSpec, "ReleaseSpec", "k", "{\"artifact\":\"https://example.com/a.tgz\"}")
  assert.ok(Result.isSuccess(plain))
  assert.equal(plain.success.artifact, "https://example.com/a.tgz")
  const status = decodeDocument(
    NodeStatus,
    "NodeStatus",
    "k",
    "{\"node\":\"web-1\",\"updatedAt\":\"2026-11-27T10:01:02Z\",\"releases\":{},\"current\":null,\"deploy\":null}"
  )
  assert.ok(Result.isSuccess(status))
  assert.equal(status.success.current, null)
})

const bad: ReadonlyArray<
  { what: string; schema: (typeof schemas)[keyof typeof schemas]; key: string; raw: string; expect: RegExp }
> = [
  {
    what: "AppConfig",
    schema: AppConfig,
    key: "sacar/shop/config",
    raw: "{\"artifact\":\"x\",\"maxParallel\":\"two\"}",
    expect: /^sacar\/shop\/config: not a valid AppConfig: field "maxParallel": expected number, got "two"$/
  },
  {
    what: "AppConfig",
    schema: AppConfig,
    key: "sacar/shop/config",
    raw: "{\"prepareTimeout\":\"15 minutes\"}",
    expect: /field "prepareTimeout": expected a duration such as "90s", "15m" or "1h30m", got "15 minutes"/
  },
  {
    what: "AppConfig",
    schema: AppConfig,
    key: "sacar/shop/config",
    raw: "{\"keepReleases\":0}",
    expect: /field "keepReleases": .*1.*got 0/
  },
  {
    what: "AppConfig",
    schema: AppConfig,
    key: "sacar/shop/config",
    raw: "{\"repo\":\"shop\"}",
    expect: /field "repo": a repository is "owner\/name", got "shop"/
  },
  {
    what: "AppConfig",
    schema: AppConfig,
    key: "sacar/shop/config",
    raw: "{\"nodes\":\"web-*\"}",
    expect: /field "nodes": expected array, got "web-\*"/
  },
  {
    what: "AppConfig",
    schema: AppConfig,
    key: "sacar/shop/config",
    raw: "{artifact: 'x'}",
    expect: /^sacar\/shop\/config: not valid JSON \(.+\); expected a AppConfig document$/
  },
  {
    what: "AppConfig",
    schema: AppConfig,
    key: "sacar/shop/config",
    raw: "",
    expect: /not valid JSON \(the value is empty\)/
  },
  {
    what: "ReleaseSpec",
    schema: ReleaseSpec,
    key: `sacar/shop/releases/${SHA}`,
    raw: "{\"artifact\":{\"url\":\"gs://b/o\",\"sha256\":\"XYZ\"}}",
    expect: /field "artifact.sha256": a sha256 is 64 lowercase hex characters, got "XYZ"/
  },
  {
    what: "DeploySpec",
    schema: DeploySpec,
    key: "sacar/shop/deploy",
    raw: "{\"sha\":\"main\"}",
    expect: /field "sha": a commit sha is 40 lowercase hex characters, got "main"/
  },
  {
    what: "DeploySpec",
    schema: DeploySpec,
    key: "sacar/shop/deploy",
    raw: "{}",
    expect: /field "sha": .* but it is missing/
  },
  {
    what: "LockDoc",
    schema: LockDoc,
    key: "sacar/shop/lock",
    raw: "{\"by\":\"a\",\"reason\":\"r\",\"at\":\"yesterday\"}",
    expect: /field "at": expected an ISO 8601 time/
  },
  {
    what: "NodeStatus",
    schema: NodeStatus,
    key: "sacar/shop/status/web-1",
    raw: "{\"node\":\"web 1\",\"updatedAt\":\"x\"}",
    expect: /field "node": a node name is/
  },
  {
    what: "NodeStatus",
    schema: NodeStatus,
    key: "sacar/shop/status/web-1",
    raw: `{"node":"w","updatedAt":"x","releases":{"${SHA}":{"phase":"cooking"}}}`,
    expect: /field "releases\.[0-9a-f]{40}\.phase": expected "pending" \| .*got "cooking"/
  },
  {
    what: "PinDoc",
    schema: PinDoc,
    key: "sacar/shop/pin",
    raw: "[]",
    expect: /^sacar\/shop\/pin: not a valid PinDoc: expected object/
  }
]

for (const { what, schema, key, raw, expect } of bad) {
  test(`a bad ${what} (${raw.slice(0, 40)}) gives one sentence naming the key and the field`, () => {
    const decoded = decodeDocument(schema, what, key, raw)
    assert.ok(Result.isFailure(decoded))
    assert.equal(decoded.failure._tag, "DocumentError")
    assert.equal(decoded.failure.key, key)
    assert.match(decoded.failure.message, expect)
    assert.ok(!decoded.failure.message.includes("\n"), "one line")
  })
}

test("documents are written compact: no indentation, no trailing newline", () => {
  const text = encodeDocument(NodeStatus, {
    node: "web-1",
    updatedAt: "2026-11-27T10:00:00Z",
    releases: { ["a".repeat(40)]: { phase: "ready", attempt: 1, steps: { download: { ms: 12 } } } },
    current: null,
    deploy: null
  })
  assert.equal(text, JSON.stringify(JSON.parse(text)))
})
