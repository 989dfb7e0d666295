import assert from "node:assert/strict"
import { test } from "node:test"
import { encodeDocument } from "../../src/spec/decode.ts"
import { PredeployDoc } from "../../src/spec/predeploy.ts"
import { readPredeploy } from "../../src/spec/tree.ts"

const KEY = "sacar/shop/locks/predeploy/41"
const SHA = "c".repeat(40)

test("the reporter reads the pre-deploy document the reconcilers write", () => {
  const failed = encodeDocument(PredeployDoc, {
    generation: 41,
    sha: SHA,
    phase: "failed",
    node: "web-2",
    startedAt: "2026-11-27T10:00:00Z",
    finishedAt: "2026-11-27T10:00:03Z",
    message: "bin/pre-deploy failed (exit code 1)",
    log: "relation users does not exist",
    attempt: 1
  })
  assert.deepEqual(readPredeploy(41, KEY, failed), {
    generation: 41,
    state: "failed",
    node: "web-2",
    message: "bin/pre-deploy failed (exit code 1)",
    log: "relation users does not exist"
  })
  const running = encodeDocument(PredeployDoc, {
    generation: 41,
    sha: SHA,
    phase: "running",
    node: "web-1",
    startedAt: "2026-11-27T10:00:00Z",
    attempt: 2
  })
  assert.equal(readPredeploy(41, KEY, running).state, "running")
})

test("a pre-deploy value that is not a PredeployDoc is 'unknown', with the reason", () => {
  const junk = readPredeploy(41, KEY, "{\"phase\":\"cooking\"}")
  assert.equal(junk.state, "unknown")
  assert.match(junk.message ?? "", /sacar\/shop\/locks\/predeploy\/41: not a valid PredeployDoc/)
  assert.equal(readPredeploy(41, KEY, null).state, "unknown")
})
