// Reading desired state from a KV snapshot, and the reconciler's settings: pure.
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { SettingError } from "../../src/common/settings.ts"
import type { KvEntry } from "../../src/consul/consul.ts"
import { readDesired } from "../../src/reconciler/read-desired.ts"
import { reconcilerSettings } from "../../src/reconciler/settings.ts"
import type { AppConfig } from "../../src/spec/documents.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import type { DecodeMemo } from "../../src/spec/tree.ts"

const keys = makeKeys("sacar")
const A = "a".repeat(40)
const B = "b".repeat(40)

const entry = (key: string, value: unknown, modifyIndex = 10): KvEntry => ({
  key,
  value: typeof value === "string" ? value : JSON.stringify(value),
  flags: "0",
  createIndex: 1,
  modifyIndex,
  lockIndex: 0
})

describe("readDesired", () => {
  test("config, releases with their ModifyIndex, and the deploy generation", () => {
    const lastGood = new Map<string, AppConfig>()
    const snap = readDesired(keys, "web-1", [
      entry("sacar/shop/config", { artifact: "file:///b/{sha}.tgz", nodes: ["web-*"] }),
      entry(`sacar/shop/releases/${A}`, { createdAt: "2026-11-27T10:00:00Z" }, 21),
      entry(`sacar/shop/releases/${B}`, "{oops", 22),
      entry("sacar/shop/deploy", { sha: A }, 30),
      entry("sacar/shop/status/web-1", { node: "web-1", updatedAt: "x", releases: {}, current: null, deploy: null }),
      entry("sacar/_nodes/web-1", { node: "web-1" })
    ], lastGood)
    const shop = snap.apps.get("shop")!
    assert.deepEqual(shop.config?.nodes, ["web-*"])
    assert.equal(shop.config?.maxParallel, 1, "defaults applied")
    assert.deepEqual(shop.errors, [])
    assert.deepEqual(shop.releases.get(A), { sha: A, specIndex: 21, spec: { createdAt: "2026-11-27T10:00:00Z" } })
    const bad = shop.releases.get(B)!
    assert.equal(bad.spec, undefined)
    assert.match(bad.specError!, new RegExp(`^sacar/shop/releases/${B}: not valid JSON`))
    assert.deepEqual(shop.deploy, { generation: 30, sha: A })
    assert.equal(snap.ownStatus.get("shop")?.node, "web-1")
    assert.equal(lastGood.size, 1)
  })

  test("a document whose ModifyIndex did not change is not decoded again; a gone key is forgotten", () => {
    const lastGood = new Map<string, AppConfig>()
    const memo: DecodeMemo = new Map()
    const config = entry("sacar/shop/config", { artifact: "file:///b/{sha}.tgz", nodes: ["web-*"] })
    const first = readDesired(
      keys,
      "web-1",
      [config, entry(`sacar/shop/releases/${A}`, { ref: "main" }, 21)],
      lastGood,
      memo
    )
    const again = readDesired(
      keys,
      "web-1",
      [config, entry(`sacar/shop/releases/${A}`, { ref: "main" }, 21)],
      lastGood,
      memo
    )
    // The same decoded object: the second pass ran no decoder for it.
    assert.equal(again.apps.get("shop")!.releases.get(A)!.spec, first.apps.get("shop")!.releases.get(A)!.spec)
    const changed = readDesired(
      keys,
      "web-1",
      [config, entry(`sacar/shop/releases/${A}`, { ref: "next" }, 22)],
      lastGood,
      memo
    )
    assert.deepEqual(changed.apps.get("shop")!.releases.get(A)!.spec?.ref, "next", "a new ModifyIndex is decoded")
    readDesired(keys, "web-1", [config], lastGood, memo)
    assert.deepEqual([...memo.keys()], ["sacar/shop/config"], "the deleted ReleaseSpec is no longer held")
  })

  test("a config that stops decoding keeps the last good one and says so; a deleted one is forgotten", () => {
    const lastGood = new Map<string, AppConfig>()
    readDesired(
      keys,
      "web-1",
      [entry("sacar/shop/config", { artifact: "file:///b/{sha}.tgz", maxParallel: 3 })],
      lastGood
    )
    const snap = readDesired(keys, "web-1", [
      entry("sacar/shop/config", { artifact: "file:///b/{sha}.tgz", maxParallel: "two" })
    ], lastGood)
    const shop = snap.apps.get("shop")!
    assert.equal(shop.config?.maxParallel, 3)
    assert.equal(shop.errors.length, 1)
    assert.match(shop.errors[0]!, /^sacar\/shop\/config: .*maxParallel.*"two".*last AppConfig that decoded/)
    readDesired(keys, "web-1", [], lastGood)
    assert.equal(lastGood.size, 0)
  })

  test("a DeploySpec that does not decode is an app error; no config means no app", () => {
    const snap = readDesired(keys, "web-1", [
      entry("sacar/shop/config", {}),
      entry("sacar/shop/deploy", { sha: "main" }),
      entry(`sacar/blog/releases/${A}`, {})
    ], new Map())
    assert.equal(snap.apps.get("shop")!.deploy, undefined)
    assert.match(snap.apps.get("shop")!.errors[0]!, /^sacar\/shop\/deploy: .*sha/)
    assert.equal(snap.apps.has("blog"), false)
  })
})

describe("reconcilerSettings", () => {
  test("defaults and overrides", () => {
    const s = reconcilerSettings({ SACAR_NODE: "web-1" })
    assert.deepEqual(s, {
      node: "web-1",
      consulNode: "web-1",
      root: "/var/lib/sacar",
      concurrency: 2,
      python: "python3",
      prefix: "sacar",
      runAs: undefined
    })
    const t = reconcilerSettings({
      SACAR_NODE: "db.1",
      SACAR_ROOT: "/srv/sacar/",
      SACAR_CONCURRENCY: "4",
      SACAR_PYTHON: "python3.12",
      SACAR_PREFIX: "team/sacar/",
      SACAR_CONSUL_NODE: "ip-10-0-1-7"
    })
    assert.deepEqual(t, {
      node: "db.1",
      consulNode: "ip-10-0-1-7",
      root: "/srv/sacar",
      concurrency: 4,
      python: "python3.12",
      prefix: "team/sacar",
      runAs: undefined
    })
  })

  test("a bad value names its variable", () => {
    for (
      const [variable, value] of [
        ["SACAR_NODE", "web 1"],
        ["SACAR_NODE", "-web"],
        ["SACAR_ROOT", "relative/path"],
        ["SACAR_CONCURRENCY", "0"],
        ["SACAR_CONCURRENCY", "two"],
        ["SACAR_PREFIX", "/sacar"],
        ["SACAR_PREFIX", "a/../b"],
        ["SACAR_CONSUL_NODE", "two words"]
      ] as const
    ) {
      assert.throws(() => reconcilerSettings({ SACAR_NODE: "web-1", [variable]: value }), (e: unknown) => {
        assert.ok(e instanceof SettingError)
        assert.equal(e.variable, variable)
        assert.match(e.message, new RegExp(variable))
        return true
      })
    }
  })
})

describe("a ReleaseSpec under a key that is not a sha", () => {
  test("is reported in the app's errors (the status error every node writes), naming the key", () => {
    const snap = readDesired(keys, "web-1", [
      entry("sacar/shop/config", { artifact: "file:///b/{sha}.tgz" }),
      entry("sacar/shop/releases/1ff1a40", {})
    ], new Map())
    const shop = snap.apps.get("shop")!
    assert.equal(shop.releases.size, 0)
    assert.match(shop.errors.join("\n"), /^sacar\/shop\/releases\/1ff1a40: "1ff1a40" is not a full commit sha/)
  })
})
