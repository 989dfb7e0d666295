// The DeploySpec write a webhook causes: the lock decision and the write are one Consul
// transaction, and a transaction Consul refuses is an error, never a generation.
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { requestDeploy, writeDeploy } from "../../src/state/writes.ts"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { getJson, putKv, randomSha } from "./harness.ts"

type ConsulShape = Parameters<typeof Consul.of>[0]

describe("deploy writes", () => {
  let consul: TestConsul
  before(async () => {
    consul = await startConsul()
  })
  after(async () => {
    await consul?.close()
  })

  /** The real Consul, with `around` changing what some calls do. */
  const wrapped = (around: (real: ConsulShape) => Partial<ConsulShape>) =>
    Layer.effect(
      Consul,
      Effect.gen(function*() {
        const real = yield* Consul
        return Consul.of({ ...real, ...around(real) })
      })
    ).pipe(Layer.provide(consulLayer({ address: consul.addr, tls: { verify: true } })))

  it("a lock written between the lock check and the DeploySpec write stops the deploy", async () => {
    const keys = makeKeys(randomPrefix())
    const app = "shop"
    await putKv(consul.addr, keys.config(app), { repo: "acme/shop", artifact: "gs://b/{sha}.tgz" })
    let lockedMeanwhile = false
    const layer = wrapped((real) => ({
      get: (key, options) =>
        real.get(key, options).pipe(
          Effect.tap(() =>
            key === keys.lock(app) && !lockedMeanwhile
              ? Effect.promise(async () => {
                lockedMeanwhile = true
                // `sacar lock` lands right after the controller read the (absent) lock.
                await putKv(consul.addr, keys.lock(app), {
                  by: "alice",
                  reason: "freeze",
                  at: new Date().toISOString()
                })
              })
              : Effect.void
          )
        )
    }))
    const sha = randomSha()
    const outcome = await Effect.runPromise(
      requestDeploy(keys, app, { sha, requestedBy: "mallory", commit: { repo: "acme/shop", sha } }).pipe(
        Effect.provide(layer),
        Effect.result
      )
    )
    assert.ok(lockedMeanwhile, "the test's lock was written")
    assert.equal(await getJson(consul.addr, keys.deploy(app)), undefined, "no DeploySpec through a lock")
    assert.ok(
      outcome._tag === "Failure" || outcome.success.kind === "refused",
      `the request is refused or fails, not deployed: ${JSON.stringify(outcome)}`
    )
  })

  it("writeDeploy fails when Consul refuses the transaction", async () => {
    const keys = makeKeys(randomPrefix())
    const layer = wrapped(() => ({
      txn: () => Effect.succeed({ ok: false as const, errors: [{ opIndex: 0, what: "permission denied" }] })
    }))
    const result = await Effect.runPromise(
      writeDeploy(keys, "shop", { sha: randomSha(), requestedBy: "x", requestedAt: new Date().toISOString() }).pipe(
        Effect.provide(layer),
        Effect.result
      )
    )
    assert.equal(result._tag, "Failure", `a refused transaction is no generation: ${JSON.stringify(result)}`)
  })
})
