// What the client puts on the wire for the settings of the Consul CLI's variables and
// for sessions, seen by a stub that records each request.
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import assert from "node:assert/strict"
import { createServer } from "node:http"
import type { IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { test } from "node:test"
import type { ConsulConfig } from "../../src/consul/config.ts"
import { Consul } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"

interface Seen {
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

const stub = async (
  t: import("node:test").TestContext,
  answer: (url: string) => [number, string, Record<string, string>?]
) => {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ""
    req.on("data", (d: Buffer) => (body += d.toString()))
    req.on("end", () => {
      seen.push({ url: req.url ?? "", headers: req.headers, body })
      const [status, text, headers] = answer(req.url ?? "")
      res.writeHead(status, { "X-Consul-Index": "7", ...headers })
      res.end(text)
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  t.after(() => new Promise<void>((r) => server.close(() => r())))
  return { seen, address: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

const use = <A, E>(config: ConsulConfig, f: (c: Consul["Service"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(Consul.use(f).pipe(Effect.provide(consulLayer(config))))

test("namespace, partition and basic auth go on every request; sessions carry Node and the TTL floor", async (t) => {
  const { seen, address } = await stub(
    t,
    (url) => url.startsWith("/v1/session/create") ? [200, "{\"ID\":\"abc\"}"] : [200, "[{\"TTL\":\"30s\"}]"]
  )
  const config: ConsulConfig = {
    address,
    tls: { verify: true },
    namespace: "team-a",
    partition: "part-1",
    httpAuth: Redacted.make("ops:s3cret"),
    sessionTtlMinMs: 30_000
  }
  const id = await use(config, (c) => c.createSession({ name: "n", ttl: "10s", behavior: "release", node: "web-1" }))
  assert.equal(id, "abc")
  const ttl = await use(config, (c) => c.renewSession("abc"))
  assert.equal(ttl, "30s", "renew answers the TTL Consul runs the session with")
  for (const s of seen) {
    const q = new URL(s.url, "http://x").searchParams
    assert.equal(q.get("ns"), "team-a")
    assert.equal(q.get("partition"), "part-1")
    assert.equal(s.headers.authorization, `Basic ${Buffer.from("ops:s3cret").toString("base64")}`)
  }
  const body = JSON.parse(seen[0]!.body) as Record<string, unknown>
  assert.equal(body.Node, "web-1")
  assert.equal(body.TTL, "30s", "raised to SACAR_SESSION_TTL_MIN")
})

test("429 is transient and keeps Retry-After; a TTL below the cluster's minimum names the setting", async (t) => {
  const { address } = await stub(t, (url) =>
    url.startsWith("/v1/session/create")
      ? [500, "Invalid Session TTL '10000000000', must be between [30s=24h0m0s]"]
      : [429, "rate limit exceeded, try again later", { "Retry-After": "3" }])
  const config: ConsulConfig = { address, tls: { verify: true } }
  const limited = await use(config, (c) => Effect.flip(c.get("k")))
  assert.equal(limited._tag, "ConsulUnavailable")
  assert.equal(limited._tag === "ConsulUnavailable" ? limited.retryAfterMs : undefined, 3_000)
  const ttl = await use(config, (c) => Effect.flip(c.createSession({ name: "n", ttl: "10s", behavior: "release" })))
  assert.equal(ttl._tag, "ConsulRequestError")
  assert.match(ttl.message, /SACAR_SESSION_TTL_MIN/)
})

test("a watch asked to read stale sends ?stale; other reads leave the consistency mode to Consul", async (t) => {
  const { seen, address } = await stub(t, () => [200, "[]"])
  const config: ConsulConfig = { address, tls: { verify: true } }
  await use(config, (c) => c.list("sacar/shop/", { index: 3, wait: "1s", stale: true }))
  await use(config, (c) => c.get("sacar/shop/deploy", { index: 3, wait: "1s" }))
  const [stale, plain] = seen.map((s) => new URL(s.url, "http://x").searchParams)
  assert.equal(stale!.has("stale"), true)
  assert.equal(stale!.get("index"), "3")
  assert.equal(plain!.has("stale"), false)
  assert.equal(plain!.has("consistent"), false)
})
