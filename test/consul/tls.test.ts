// https: CONSUL_CACERT, a client certificate and CONSUL_HTTP_SSL_VERIFY=false,
// against an https stub that requires a client certificate from the test CA.

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { createServer } from "node:https"
import { join } from "node:path"
import { test } from "node:test"
import type { TestContext } from "node:test"
import type { TLSSocket } from "node:tls"
import { consulConfigFromEnv } from "../../src/consul/config.ts"
import { Consul } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { sendKv } from "./stub.ts"

const fixtures = join(import.meta.dirname, "fixtures")
const file = (name: string) => join(fixtures, name)

async function httpsStub(
  t: TestContext,
  requireClientCert: boolean
): Promise<{ addr: string; clients: Array<string> }> {
  const clients: Array<string> = []
  const server = createServer({
    cert: readFileSync(file("server.pem")),
    key: readFileSync(file("server-key.pem")),
    ca: readFileSync(file("ca.pem")),
    requestCert: requireClientCert,
    rejectUnauthorized: requireClientCert
  }, (req, res) => {
    const cn = (req.socket as TLSSocket).getPeerCertificate()?.subject?.CN
    clients.push(Array.isArray(cn) ? cn.join(",") : cn ?? "")
    sendKv(res, 3, [{ key: "k", value: "secure" }])
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  t.after(() =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  )
  return { addr: `https://127.0.0.1:${(server.address() as { port: number }).port}`, clients }
}

const getFrom = (env: Record<string, string>) =>
  Effect.runPromise(Effect.exit(Effect.gen(function*() {
    const config = yield* consulConfigFromEnv(env)
    return yield* Consul.use((c) => c.get("k")).pipe(Effect.provide(consulLayer(config)))
  })))

test("https with CONSUL_CACERT and a client certificate", async (t) => {
  const stub = await httpsStub(t, true)
  const exit = await getFrom({
    CONSUL_HTTP_ADDR: stub.addr,
    CONSUL_CACERT: file("ca.pem"),
    CONSUL_CLIENT_CERT: file("client.pem"),
    CONSUL_CLIENT_KEY: file("client-key.pem")
  })
  assert.ok(Exit.isSuccess(exit), String(exit))
  assert.equal(exit.value.value?.value, "secure")
  assert.deepEqual(stub.clients, ["sacar-client"])
})

test("https fails without the CA, and passes with CONSUL_HTTP_SSL_VERIFY=false", async (t) => {
  const stub = await httpsStub(t, false)
  const untrusted = await getFrom({ CONSUL_HTTP_ADDR: stub.addr })
  assert.ok(Exit.isFailure(untrusted))
  const reason = untrusted.cause.reasons[0]
  assert.ok(reason?._tag === "Fail" && reason.error._tag === "ConsulUnavailable")
  assert.match(reason.error.message, /certificate/i)
  const unverified = await getFrom({ CONSUL_HTTP_ADDR: stub.addr, CONSUL_HTTP_SSL_VERIFY: "false" })
  assert.ok(Exit.isSuccess(unverified))
  assert.equal(unverified.value.value?.value, "secure")
})
