/**
 * The node's plan, the controller's reports and `sacar status` read the same KV
 * through one decoder (spec/tree.ts): fed the same entries, their projections agree on
 * which nodes are alive, the order of releases and the problems.
 */
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import type { KvEntry } from "../../src/consul/consul.ts"
import { readSnapshot as reportSnapshot } from "../../src/controller/report/snapshot.ts"
import { readAppLock, readDesired as nodeSnapshot } from "../../src/reconciler/read-desired.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { newestFirst } from "../../src/spec/tree.ts"
import { snapshotFrom } from "../../src/state/snapshot.ts"

const keys = makeKeys("sacar")
const A = "a".repeat(40)
const B = "b".repeat(40)
const C = "c".repeat(40)
const D = "d".repeat(40)

const entry = (key: string, value: unknown, modifyIndex: number, session?: string): KvEntry => ({
  key,
  value: typeof value === "string" ? value : JSON.stringify(value),
  flags: "0",
  createIndex: modifyIndex,
  modifyIndex,
  lockIndex: 0,
  ...(session === undefined ? {} : { session })
})
const registration = (node: string, modifyIndex: number, session?: string) =>
  entry(
    `sacar/_nodes/${node}`,
    { node, version: "0.1.0", startedAt: "2026-11-27T08:00:00Z", root: "/r" },
    modifyIndex,
    session
  )

const appEntries = [
  entry("sacar/shop/config", { artifact: "file:///srv/{sha}.tgz" }, 1),
  // 10:00 at index 2, no createdAt at 3, 09:00 at 4: "createdAt when both have one, else
  // ModifyIndex" would make a cycle of these three.
  entry(`sacar/shop/releases/${A}`, { createdAt: "2026-11-27T10:00:00Z" }, 2),
  entry(`sacar/shop/releases/${B}`, {}, 3),
  entry(`sacar/shop/releases/${C}`, { createdAt: "2026-11-27T09:00:00Z" }, 4),
  entry(`sacar/shop/releases/${D}`, { createdAt: "2026-11-27T11:00:00Z" }, 5),
  entry("sacar/shop/releases/1ff1a40", {}, 6),
  entry("sacar/shop/deploy", { sha: "short" }, 7),
  entry("sacar/shop/status/web-1", "{oops", 8),
  entry("sacar/shop/pin", { sha: A }, 9)
]
const nodeEntries = [
  registration("web-1", 20, "s1"),
  registration("web-2", 21, "s2"),
  // Written by hand: no session holds it, so it says nothing about web-3 being alive.
  registration("web-3", 22)
]

describe("one reader of the KV tree", () => {
  const all = [...appEntries, ...nodeEntries]
  const report = reportSnapshot(keys, 30, all)
  const status = snapshotFrom(keys, "shop", appEntries, nodeEntries, 30)
  const node = nodeSnapshot(keys, "web-1", all, new Map())

  test("alive nodes: only registrations a session holds", () => {
    assert.deepEqual([...report.nodes].sort(), ["web-1", "web-2"])
    assert.deepEqual(status.expectedNodes, ["web-1", "web-2"])
  })

  test("release order: createdAt newest first, dateless after, then ModifyIndex", () => {
    const expected = [D, A, C, B]
    assert.deepEqual([...report.apps.get("shop")!.releases.keys()], expected)
    assert.deepEqual(status.releases.map((r) => r.sha), expected)
    assert.deepEqual([...node.apps.get("shop")!.releases.keys()], expected)
    // The order does not depend on the order the keys came in.
    const shuffled = reportSnapshot(keys, 30, [...all].reverse())
    assert.deepEqual([...shuffled.apps.get("shop")!.releases.keys()], expected)
  })

  test("problems: the same sentences, and the node reports those it acts on", () => {
    assert.equal(report.problems.length, 4)
    assert.deepEqual(status.problems, report.problems)
    assert.ok(
      report.problems.some((p) => p.startsWith("sacar/shop/releases/1ff1a40: \"1ff1a40\" is not a full commit sha"))
    )
    assert.ok(report.problems.some((p) => p.startsWith("sacar/shop/deploy:")))
    assert.ok(report.problems.some((p) => p.startsWith("sacar/shop/status/web-1: not valid JSON")))
    assert.ok(report.problems.some((p) => p.startsWith("sacar/shop/pin:")))
    const errors = node.apps.get("shop")!.errors
    assert.deepEqual(errors, report.problems.filter((p) => /releases\/1ff1a40|\/deploy:/.test(p)))
  })

  test("an empty lock key is no lock, for every reader", () => {
    const touched = [...appEntries, entry("sacar/shop/lock", "", 40)]
    assert.equal(reportSnapshot(keys, 40, touched).apps.get("shop")!.lock, undefined)
    assert.equal(snapshotFrom(keys, "shop", touched, [], 40).lock, undefined)
    assert.equal(readAppLock(entry("sacar/shop/lock", "", 40)), undefined)
    assert.equal(reportSnapshot(keys, 40, touched).problems.length, 4)
  })

  test("newestFirst is a total order", () => {
    const r = (sha: string, modifyIndex: number, createdAt?: string) => ({ sha, modifyIndex, createdAt })
    const x = r(A, 1, "2026-11-27T10:00:00Z")
    const y = r(B, 2)
    const z = r(C, 3, "2026-11-27T09:00:00Z")
    assert.ok(newestFirst(x, z) < 0 && newestFirst(z, y) < 0 && newestFirst(x, y) < 0)
    assert.ok(newestFirst(r(A, 1), r(B, 2)) > 0)
    assert.ok(newestFirst(r(A, 1, "not a time"), r(B, 2)) > 0)
  })
})
