// The writers of desired state stamp documents with the Clock's time, not the machine's:
// under TestClock the stamp is the test's time (here 2030-01-01), whatever the wall says.

import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import type { TxnOp } from "../../src/consul/consul.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { requestDeploy, retryRelease } from "../../src/state/writes.ts"
import { consulStandIn } from "../support/consul-stand-in.ts"

const AT = Date.parse("2030-01-01T00:00:00.000Z")

/** A KV of `written` alone, recording what is written (puts and transactions' sets and cas). */
const recordingConsul = (written: Map<string, string>) => {
  const apply = (op: TxnOp) => {
    if ((op.verb === "set" || op.verb === "cas") && op.value !== undefined) written.set(op.key, op.value)
  }
  return consulStandIn("these writers", {
    get: (key) => {
      const value = written.get(key)
      return Effect.succeed({
        index: 1,
        value: value === undefined
          ? undefined
          : { key, value, flags: "0", createIndex: 1, modifyIndex: 1, lockIndex: 0 }
      })
    },
    put: (key, value) => Effect.sync(() => (written.set(key, value), true)),
    txn: (ops) => Effect.sync(() => (ops.forEach(apply), { ok: true as const, entries: [] }))
  })
}

const onTestClock = <A, E>(written: Map<string, string>, effect: Effect.Effect<A, E, Consul>) =>
  Effect.runPromise(
    Effect.gen(function*() {
      yield* TestClock.setTime(AT)
      return yield* effect
    }).pipe(Effect.provide(Layer.merge(recordingConsul(written), TestClock.layer())))
  )

test("a deploy request's requestedAt is the Clock's time", async () => {
  const keys = makeKeys("sacar")
  const written = new Map<string, string>()
  const outcome = await onTestClock(written, requestDeploy(keys, "shop", { sha: "a".repeat(40), requestedBy: "alice" }))
  assert.equal(outcome.kind, "deployed")
  const spec = JSON.parse(written.get(keys.deploy("shop")) ?? "{}")
  assert.equal(spec.requestedAt, "2030-01-01T00:00:00.000Z")
})

test("a retried release's createdAt is the Clock's time", async () => {
  const keys = makeKeys("sacar")
  const written = new Map<string, string>()
  const sha = "b".repeat(40)
  const old = { artifact: "gs://builds/shop.tgz", createdAt: "2020-01-01T00:00:00.000Z", source: "github" }
  written.set(keys.release("shop", sha), JSON.stringify(old))
  await onTestClock(written, retryRelease(keys, "shop", sha, old, "bob"))
  const spec = JSON.parse(written.get(keys.release("shop", sha)) ?? "{}")
  assert.equal(spec.createdAt, "2030-01-01T00:00:00.000Z")
  assert.equal(spec.requestedBy, "bob")
  assert.equal(spec.artifact, "gs://builds/shop.tgz", "what the release is stays")
})
