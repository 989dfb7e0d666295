/**
 * What `sacar status` and `sacar rollback` make of an app's documents: pure functions
 * over a snapshot built from KV entries, so each case is the exact KV a person would see.
 */
import * as Result from "effect/Result"
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import type { KvEntry } from "../../src/consul/consul.ts"
import { rollbackTarget } from "../../src/operator/actions.ts"
import { resolveSha } from "../../src/operator/sha.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { snapshotFrom } from "../../src/state/snapshot.ts"
import { renderApp } from "../../src/state/table.ts"

const keys = makeKeys("sacar")
const OLD = "1ff1a40" + "1".repeat(33)
const NEW = "050cf19" + "2".repeat(33)
const now = new Date("2026-11-27T10:10:00Z")

let index = 10
const entry = (key: string, value: unknown): KvEntry => ({
  key,
  value: typeof value === "string" ? value : JSON.stringify(value),
  flags: "0",
  createIndex: index,
  modifyIndex: index++,
  lockIndex: 0
})
const node = (name: string, fields: Record<string, unknown>) =>
  entry(`sacar/shop/status/${name}`, {
    node: name,
    updatedAt: "2026-11-27T10:00:00Z",
    releases: {},
    current: null,
    deploy: null,
    ...fields
  })
const registered = (name: string) => ({
  ...entry(`sacar/_nodes/${name}`, { node: name, version: "0.1.0", startedAt: "2026-11-27T08:00:00Z", root: "/r" }),
  session: `session-${name}`
})
const snapshot = (entries: KvEntry[]) =>
  snapshotFrom(keys, "shop", entries, [registered("web-1"), registered("web-2")], index)
const config = entry("sacar/shop/config", { artifact: "file:///srv/{sha}.tgz" })

describe("sacar status: the table explains itself", () => {
  test("the full sha of the live release appears, with the nodes it is live on", () => {
    const s = snapshot([
      config,
      entry(`sacar/shop/releases/${OLD}`, { createdAt: "2026-11-27T10:00:00Z" }),
      node("web-1", { current: OLD }),
      node("web-2", { current: OLD })
    ])
    assert.match(renderApp(s, now), new RegExp(`live: ${OLD} on web-1, web-2`))
  })

  test("a sha deployed without a release has its row in the release table", () => {
    const deploy = entry("sacar/shop/deploy", { sha: NEW })
    const ready = { phase: "ready", steps: { download: { ms: 1000 } } }
    const s = snapshot([
      config,
      deploy,
      node("web-1", { current: NEW, releases: { [NEW]: ready } }),
      node("web-2", { current: NEW, releases: { [NEW]: ready } })
    ])
    const table = renderApp(s, now)
    assert.match(table, /050cf19 \(no ReleaseSpec\)\s+-\s+ready 1s\s+ready 1s/)
    assert.doesNotMatch(table, /no releases/)
  })

  test("a ReleaseSpec under a key that is not a full sha is reported, not silently ignored", () => {
    const s = snapshot([config, entry("sacar/shop/releases/1ff1a40", {})])
    assert.match(
      s.problems.join("\n"),
      /sacar\/shop\/releases\/1ff1a40: "1ff1a40" is not a full commit sha \(40 lowercase hex characters\)/
    )
    assert.match(renderApp(s, now), /problem: sacar\/shop\/releases\/1ff1a40/)
  })

  test("a failed step shows the last lines of its output, a failed deploy those of bin/deploy", () => {
    const log = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n") + "\nERROR: flask not found"
    const s = snapshot([
      config,
      entry(`sacar/shop/releases/${OLD}`, {}),
      entry(`sacar/shop/releases/${NEW}`, {}),
      node("web-1", {
        releases: { [NEW]: { phase: "failed", message: "install failed (exit code 1)", log } }
      }),
      node("web-2", {
        current: OLD,
        releases: { [OLD]: { phase: "ready" } },
        deploy: {
          generation: 7,
          sha: OLD,
          phase: "failed",
          message: "bin/deploy failed (exit code 3)",
          log: "starting\nport 8000 already in use"
        }
      })
    ])
    const table = renderApp(s, now)
    assert.match(table, /050cf19 on web-1: install failed \(exit code 1\)\n(\s+\| .*\n)*\s+\| ERROR: flask not found/)
    assert.doesNotMatch(table, /\| line 1\n/, "only the last lines")
    assert.match(table, /web-2\s+1ff1a40\s+failed 1ff1a40 gen 7\s+bin\/deploy failed \(exit code 3\)/)
    assert.match(table, /web-2: bin\/deploy's last lines:\n\s+\| starting\n\s+\| port 8000 already in use/)
  })
})

describe("sacar rollback: where to go back to", () => {
  test("after a deploy that went live, back to what the nodes had before", () => {
    const s = snapshot([
      config,
      entry("sacar/shop/deploy", { sha: NEW }),
      node("web-1", { current: NEW, previous: OLD }),
      node("web-2", { current: NEW, previous: OLD })
    ])
    assert.deepEqual(rollbackTarget(s), Result.succeed(OLD))
  })

  test("after a deploy that failed before going live anywhere, back to what is live", () => {
    const failed = { generation: 9, sha: NEW, phase: "failed", message: "bin/deploy failed (exit code 3)" }
    const s = snapshot([
      config,
      entry("sacar/shop/deploy", { sha: NEW }),
      node("web-1", { current: OLD, deploy: failed }),
      node("web-2", { current: OLD, deploy: { ...failed, message: "rollout halted: web-1 failed" } })
    ])
    assert.deepEqual(rollbackTarget(s), Result.succeed(OLD))
  })

  test("after a deploy that went live on some nodes only, back to what was live before it", () => {
    const s = snapshot([
      config,
      entry("sacar/shop/deploy", { sha: NEW }),
      node("web-1", { current: NEW, previous: OLD }),
      node("web-2", { current: OLD })
    ])
    assert.deepEqual(rollbackTarget(s), Result.succeed(OLD))
  })

  test("with nothing live anywhere, it says there is nothing to go back to", () => {
    const s = snapshot([config, entry("sacar/shop/deploy", { sha: NEW }), node("web-1", {})])
    assert.ok(Result.isFailure(rollbackTarget(s)))
  })
})

describe("shas as people type them", () => {
  const s = snapshot([
    config,
    entry(`sacar/shop/releases/${OLD}`, {}),
    entry(`sacar/shop/releases/${"050cf1a" + "3".repeat(33)}`, {}),
    entry("sacar/shop/deploy", { sha: NEW })
  ])
  test("a unique prefix of at least 7 among the releases and the deploy target is the full sha", () => {
    assert.deepEqual(resolveSha(s, "1ff1a40"), Result.succeed(OLD))
    assert.deepEqual(resolveSha(s, "050cf19"), Result.succeed(NEW))
    assert.deepEqual(resolveSha(s, NEW.toUpperCase()), Result.succeed(NEW))
  })
  test("an ambiguous prefix lists the candidates", () => {
    const r = resolveSha(s, "050cf1")
    assert.ok(Result.isFailure(r))
    assert.match(r.failure, /at least 7/)
    const amb = resolveSha(
      snapshot([
        config,
        entry(`sacar/shop/releases/${"050cf1a" + "3".repeat(33)}`, {}),
        entry(`sacar/shop/releases/${"050cf1a" + "4".repeat(33)}`, {})
      ]),
      "050cf1a"
    )
    assert.ok(Result.isFailure(amb))
    assert.match(amb.failure, /050cf1a is ambiguous in shop: 050cf1a3{33}, 050cf1a4{33}/)
  })
  test("a prefix matching nothing says so; a full sha needs no release", () => {
    const r = resolveSha(s, "deadbee")
    assert.ok(Result.isFailure(r))
    assert.match(r.failure, /no release or deploy of shop starts with deadbee/)
    assert.deepEqual(resolveSha(s, "d".repeat(40)), Result.succeed("d".repeat(40)))
  })
})
