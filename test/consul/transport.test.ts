// The HTTP transport's contract, checked against a stub server: interruption aborts
// the request, errors are classified, the token header is sent, sockets are reused.

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import assert from "node:assert/strict"
import { createServer } from "node:net"
import { test } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import type { ConsulError } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { sendKv, startStub } from "./stub.ts"

const failureOf = <A>(exit: Exit.Exit<A, ConsulError>): ConsulError => {
  assert.ok(Exit.isFailure(exit), "expected a failure")
  const reason = exit.cause.reasons[0]
  assert.ok(reason !== undefined && reason._tag === "Fail", "expected a typed failure")
  return reason.error
}

const withConsul = <A, E>(
  addr: string,
  effect: Effect.Effect<A, E, Consul>,
  extra: { token?: string; requestTimeoutMs?: number } = {}
) =>
  Effect.runPromise(Effect.exit(effect.pipe(Effect.provide(consulLayer({
    address: addr,
    tls: { verify: true },
    ...(extra.token !== undefined ? { token: Redacted.make(extra.token) } : {}),
    ...(extra.requestTimeoutMs !== undefined ? { requestTimeoutMs: extra.requestTimeoutMs } : {})
  })))))

test("interrupting a blocking read aborts the HTTP request", async (t) => {
  let closed = false
  const stub = await startStub(t, (req) => {
    req.socket.on("close", () => {
      closed = true
    }) // never answers: a blocking query
  })
  const fiber = Effect.runFork(
    Consul.use((c) => c.get("k", { index: 5, wait: "5m" })).pipe(
      Effect.provide(consulLayer({ address: stub.addr, tls: { verify: true } }))
    )
  )
  await eventually("the request", () => stub.requests.length === 1, 2_000)
  assert.equal(stub.requests[0]!.url.searchParams.get("index"), "5")
  assert.equal(stub.requests[0]!.url.searchParams.get("wait"), "5m")
  await Effect.runPromise(Fiber.interrupt(fiber))
  await eventually("the server to see the connection close", () => closed, 2_000)
})

test("5xx and network errors are ConsulUnavailable; 4xx are ConsulRequestError with Consul's text", async (t) => {
  const stub = await startStub(t, (_req, res, url) => {
    if (url.pathname.endsWith("/five")) {
      res.writeHead(500, { "Content-Type": "text/plain" })
      res.end("rpc error: No cluster leader")
    } else if (url.pathname.endsWith("/four")) {
      res.writeHead(403, { "Content-Type": "text/plain" })
      res.end("Permission denied: token with AccessorID 'x' lacks permission \"key:read\"\n")
    } else {
      res.writeHead(500, { "Content-Type": "text/plain" })
      res.end("rpc error making call: invalid session \"abc\"")
    }
  })
  const five = failureOf(await withConsul(stub.addr, Consul.use((c) => c.get("five"))))
  assert.equal(five._tag, "ConsulUnavailable")
  assert.match(five.message, /No cluster leader/)

  const four = failureOf(await withConsul(stub.addr, Consul.use((c) => c.get("four"))))
  assert.equal(four._tag, "ConsulRequestError")
  assert.ok(four._tag === "ConsulRequestError" && four.status === 403)
  assert.match(four.message, /^Permission denied: .*key:read"$/)

  // Consul's 500 for a dead session is the caller's problem, not an outage.
  const dead = failureOf(await withConsul(stub.addr, Consul.use((c) => c.put("k", "v", { acquire: "abc" }))))
  assert.equal(dead._tag, "ConsulRequestError")

  // A port nothing listens on.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const refused = failureOf(await withConsul(`http://127.0.0.1:${port}`, Consul.use((c) => c.get("k"))))
  assert.equal(refused._tag, "ConsulUnavailable")
  assert.match(refused.message, /ECONNREFUSED/)
})

test("a request with no answer fails after the request timeout; a blocking one gets wait + wait/16 more", async (t) => {
  const stub = await startStub(t, () => {})
  const started = Date.now()
  const plain = failureOf(await withConsul(stub.addr, Consul.use((c) => c.get("k")), { requestTimeoutMs: 300 }))
  assert.equal(plain._tag, "ConsulUnavailable")
  assert.ok(Date.now() - started < 2_000)

  const blockingStarted = Date.now()
  const blocking = failureOf(
    await withConsul(stub.addr, Consul.use((c) => c.get("k", { index: 3, wait: "1s" })), { requestTimeoutMs: 300 })
  )
  const elapsed = Date.now() - blockingStarted
  assert.equal(blocking._tag, "ConsulUnavailable")
  assert.ok(elapsed >= 1_000 + 62 + 300 - 20, `gave up after ${elapsed} ms`)
  assert.ok(elapsed < 3_000)
})

test("the token goes in X-Consul-Token and sockets are kept alive across requests", async (t) => {
  const stub = await startStub(t, (_req, res) => sendKv(res, 7, [{ key: "k", value: "v" }]))
  const exit = await withConsul(
    stub.addr,
    Effect.gen(function*() {
      const consul = yield* Consul
      for (let i = 0; i < 5; i++) yield* consul.get("k")
      return yield* consul.get("k")
    }),
    { token: "s3cr3t" }
  )
  assert.ok(Exit.isSuccess(exit))
  assert.equal(exit.value.value?.value, "v")
  assert.equal(exit.value.index, 7)
  assert.ok(stub.requests.every((r) => r.headers["x-consul-token"] === "s3cr3t"))
  assert.equal(stub.connections, 1)
})

test("many blocking reads can be in flight at once from one layer", async (t) => {
  const held: Array<() => void> = []
  const stub = await startStub(t, (_req, res) => held.push(() => sendKv(res, 9, [{ key: "k", value: "v" }])))
  const run = withConsul(
    stub.addr,
    Effect.all(
      Array.from({ length: 40 }, () => Consul.use((c) => c.get("k", { index: 1, wait: "1m" }))),
      { concurrency: "unbounded" }
    )
  )
  await eventually("40 concurrent requests", () => stub.requests.length === 40, 5_000)
  await sleep(50)
  for (const release of held) release()
  const exit = await run
  assert.ok(Exit.isSuccess(exit))
  assert.equal(exit.value.length, 40)
})

test("a key with reserved characters is percent-encoded per segment", async (t) => {
  const stub = await startStub(t, (_req, res) => sendKv(res, 2, []))
  const exit = await withConsul(stub.addr, Consul.use((c) => c.get("a b/c%d/e")))
  assert.ok(Exit.isSuccess(exit))
  assert.equal(exit.value.value, undefined)
  assert.equal(exit.value.index, 2)
  assert.equal(stub.requests[0]!.url.pathname, "/v1/kv/a%20b/c%25d/e")
})
