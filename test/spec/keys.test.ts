import * as Result from "effect/Result"
import assert from "node:assert/strict"
import { test } from "node:test"
import { expandArtifact, resolveArtifact } from "../../src/spec/artifact.ts"
import type { AppConfig } from "../../src/spec/documents.ts"
import { formatDuration, parseDuration } from "../../src/spec/duration.ts"
import { matchesAny, matchesGlob } from "../../src/spec/glob.ts"
import { makeKeys } from "../../src/spec/keys.ts"

const SHA = "0123456789abcdef0123456789abcdef01234567"

test("every key the contract lists is built and parsed back", () => {
  const k = makeKeys("sacar")
  const cases = [
    [k.config("shop"), { kind: "config", app: "shop" }],
    [k.release("shop", SHA), { kind: "release", app: "shop", sha: SHA }],
    [k.deploy("shop"), { kind: "deploy", app: "shop" }],
    [k.status("shop", "web-1.eu"), { kind: "status", app: "shop", node: "web-1.eu" }],
    [k.lock("shop"), { kind: "lock", app: "shop" }],
    [k.pin("shop"), { kind: "pin", app: "shop" }],
    [k.github("shop", SHA), { kind: "github", app: "shop", sha: SHA }],
    [k.predeploy("shop", 42), { kind: "locks", app: "shop", rest: "predeploy/42" }],
    [k.node("web-1"), { kind: "node", node: "web-1" }],
    [k.leader, { kind: "leader" }]
  ] as const
  for (const [key, parsed] of cases) assert.deepEqual(k.parse(key), parsed, key)
  assert.equal(k.config("shop"), "sacar/shop/config")
  assert.equal(k.status("shop", "web-1"), "sacar/shop/status/web-1")
  assert.equal(k.node("web-1"), "sacar/_nodes/web-1")
  assert.equal(k.leader, "sacar/_controller/leader")
})

test("keys with bad names or outside the prefix are 'other', never misread", () => {
  const k = makeKeys("team/sacar/")
  assert.equal(k.config("shop"), "team/sacar/shop/config")
  for (
    const key of [
      "team/sacar/Shop/config",
      "team/sacar/shop/releases/abc",
      "team/sacar/_x/config",
      "sacar/shop/config",
      "team/sacar/shop/status/../x",
      "team/sacar/shop/config/extra"
    ]
  ) {
    assert.equal(k.parse(key).kind, "other", key)
  }
})

test("the artifact template expands {app}, {sha} and {short}; the spec's own artifact wins", () => {
  assert.equal(expandArtifact("gs://b/{app}/{short}/{sha}.tgz", "shop", SHA), `gs://b/shop/0123456/${SHA}.tgz`)
  const config = { artifact: "gs://b/{app}/{sha}.tgz" } as AppConfig
  const fromTemplate = resolveArtifact("shop", SHA, {}, config)
  assert.ok(Result.isSuccess(fromTemplate))
  assert.deepEqual(fromTemplate.success, { url: `gs://b/shop/${SHA}.tgz` })
  const own = resolveArtifact("shop", SHA, { artifact: { url: "https://x/{sha}.tgz", sha256: "b".repeat(64) } }, config)
  assert.ok(Result.isSuccess(own))
  assert.deepEqual(own.success, { url: `https://x/${SHA}.tgz`, sha256: "b".repeat(64) })
  const none = resolveArtifact("shop", SHA, {}, {} as AppConfig)
  assert.ok(Result.isFailure(none))
  assert.match(none.failure.message, /no artifact for shop 0123456/)
  const ftp = resolveArtifact("shop", SHA, { artifact: "ftp://x/y" }, config)
  assert.ok(Result.isFailure(ftp))
  assert.match(ftp.failure.message, /scheme ftp:/)
  const typo = resolveArtifact("shop", SHA, { artifact: "gs://b/{commit}.tgz" }, config)
  assert.ok(Result.isFailure(typo))
  assert.match(typo.failure.message, /unknown placeholder/)
})

test("node globs", () => {
  assert.ok(matchesGlob("web-1", "web-*"))
  assert.ok(!matchesGlob("db-1", "web-*"))
  assert.ok(matchesGlob("web-1", "web-?"))
  assert.ok(!matchesGlob("web-10", "web-?"))
  assert.ok(matchesGlob("web-3", "web-[1-3]"))
  assert.ok(!matchesGlob("web-4", "web-[1-3]"))
  assert.ok(matchesGlob("a.b", "a.b") && !matchesGlob("axb", "a.b"))
  assert.ok(matchesAny("db-1", ["web-*", "db-*"]))
  assert.ok(matchesAny("anything", ["*"]))
})

test("durations", () => {
  assert.equal(parseDuration("15m"), 900_000)
  assert.equal(parseDuration("1h30m"), 5_400_000)
  assert.equal(parseDuration("500ms"), 500)
  assert.equal(parseDuration("1.5s"), 1500)
  for (const bad of ["", "15", "15 minutes", "m", "1h 30m", "-5s"]) assert.equal(parseDuration(bad), undefined, bad)
  assert.equal(formatDuration(41_200), "41.2s")
  assert.equal(formatDuration(61_500), "1m1.5s")
  assert.equal(formatDuration(250), "250ms")
})
