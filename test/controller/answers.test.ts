// What the controller's HTTP side answers to anyone who asks, in-process (no `sacar`
// process): both webhook secrets during a rotation, and no Consul address or error
// text in /readyz or in a webhook's error answer when Consul is down.
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import assert from "node:assert/strict"
import { createServer } from "node:net"
import { test } from "node:test"
import { consulLayer } from "../../src/consul/http.ts"
import { startServer } from "../../src/controller/main.ts"
import { Metrics } from "../../src/controller/metrics.ts"
import { controllerSettingsFromEnv } from "../../src/controller/settings.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { randomPrefix, startConsul } from "../support/consul.ts"
import { examplePayload, sendWebhook } from "../support/fake-github/webhooks.ts"
import { getJson, putKv, randomSha, snapshot } from "./harness.ts"

const NEW_SECRET = "the-new-webhook-secret"
const OLD_SECRET = "the-old-webhook-secret"

/** The controller's server on port 0 against `consul`, until the test ends. */
const serveAgainst = async (t: { after: (fn: () => Promise<void>) => void }, consul: string, prefix: string) => {
  const settings = controllerSettingsFromEnv({
    SACAR_LISTEN: "127.0.0.1:0",
    SACAR_PREFIX: prefix,
    GITHUB_WEBHOOK_SECRET: NEW_SECRET,
    GITHUB_WEBHOOK_SECRET_PREVIOUS: OLD_SECRET
  })
  const url = Promise.withResolvers<string>()
  const fiber = Effect.runFork(
    Effect.scoped(Effect.gen(function*() {
      const listening = yield* startServer(settings, { keys: makeKeys(prefix), metrics: new Metrics() })
      url.resolve(listening.url)
      return yield* Effect.never
    })).pipe(
      Effect.provide(consulLayer({ address: consul, tls: { verify: true } })),
      Effect.provide(Layer.mergeAll(Logger.layer([]), Layer.succeed(References.MinimumLogLevel, "None")))
    )
  )
  fiber.addObserver((exit) => {
    if (exit._tag === "Failure") url.reject(new Error(`server stopped: ${String(exit.cause)}`))
  })
  t.after(() => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined))
  return url.promise
}

/** A port nothing listens on: bound, then released. */
const deadPort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

const pushTo = (sha: string) => examplePayload("push", undefined, { repo: "acme/shop", sha, ref: "main" })

test("a delivery signed with GITHUB_WEBHOOK_SECRET_PREVIOUS is accepted; one signed with neither secret is refused 401", async (t) => {
  const consul = await startConsul()
  t.after(() => consul.close())
  const prefix = randomPrefix()
  await putKv(consul.addr, `${prefix}/shop/config`, { repo: "acme/shop", artifact: "gs://builds/{app}/{sha}.tgz" })
  const url = `${await serveAgainst(t, consul.addr, prefix)}/github/webhook`

  const old = randomSha()
  const byOld = await sendWebhook(url, OLD_SECRET, "push", pushTo(old))
  assert.equal(byOld.status, 200, byOld.body)
  assert.equal(
    (await getJson(consul.addr, `${prefix}/shop/github/${old}`))?.sha,
    old,
    "acted on: the commit is recorded"
  )

  const current = randomSha()
  const byNew = await sendWebhook(url, NEW_SECRET, "push", pushTo(current))
  assert.equal(byNew.status, 200, byNew.body)

  const before = await snapshot(consul.addr, prefix)
  const byNeither = await sendWebhook(url, "a-secret-nobody-configured", "push", pushTo(randomSha()))
  assert.equal(byNeither.status, 401)
  assert.match(JSON.parse(byNeither.body).error, /does not match/)
  assert.deepEqual(await snapshot(consul.addr, prefix), before, "nothing written")
})

test("with Consul down, /readyz and a webhook's error answer name neither Consul's address nor its error", async (t) => {
  const port = await deadPort()
  const consulAddress = `http://127.0.0.1:${port}`
  const base = await serveAgainst(t, consulAddress, randomPrefix())
  const leaks = (body: string) => {
    for (const secret of [consulAddress, `127.0.0.1:${port}`, String(port), "ECONNREFUSED", "connect"]) {
      assert.ok(!body.includes(secret), `the answer names ${JSON.stringify(secret)}: ${body}`)
    }
  }

  const ready = await fetch(`${base}/readyz`)
  const readyBody = await ready.text()
  assert.equal(ready.status, 503)
  assert.match(JSON.parse(readyBody).error, /Consul is unreachable/)
  leaks(readyBody)

  const hook = await sendWebhook(`${base}/github/webhook`, NEW_SECRET, "push", pushTo(randomSha()))
  assert.equal(hook.status, 503, hook.body)
  assert.match(JSON.parse(hook.body).error, /could not store this delivery/)
  leaks(hook.body)
})
