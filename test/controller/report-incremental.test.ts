// The report loop reads incrementally: when one node writes its status, Consul serves
// the controller that status (and key names), not every other node's status again.
// Counted in bytes on the wire between the loop and Consul (a TCP relay in between).
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import assert from "node:assert/strict"
import { createConnection, createServer } from "node:net"
import type { AddressInfo, Socket } from "node:net"
import { test } from "node:test"
import { consulLayer } from "../../src/consul/http.ts"
import { Metrics } from "../../src/controller/metrics.ts"
import { reportLoop } from "../../src/controller/report/loop.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { consulForTest } from "../consul/harness.ts"
import { eventually, sleep } from "../support/eventually.ts"

/** A relay to `target` that counts the bytes the server sends back. */
const countingRelay = async (target: string) => {
  const { hostname, port } = new URL(target)
  let served = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = createConnection({ host: hostname, port: Number(port) })
    sockets.add(client).add(upstream)
    upstream.on("data", (chunk: Buffer) => void (served += chunk.length))
    client.pipe(upstream).pipe(client)
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on("error", end).on("close", end)
    upstream.on("error", end).on("close", end)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    served: () => served,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

const SHA = "a".repeat(40)
const NODES = 40

test("one node's status write does not make the controller download the other nodes' statuses", async (t) => {
  const { addr, consul, prefix, fork, run } = await consulForTest(t)
  const keys = makeKeys(prefix)
  // Each status carries a log of about 1 KiB, as a failed step's does: easy to tell apart from key names.
  const statusOf = (node: string, phase: string) =>
    JSON.stringify({
      node,
      updatedAt: new Date().toISOString(),
      releases: { [SHA]: { phase, attempt: 1, steps: {}, log: `${node} `.repeat(100) } },
      current: null,
      deploy: null
    })
  const oneStatus = Buffer.byteLength(statusOf("web-10", "ready"))
  await run(consul.put(keys.config("shop"), JSON.stringify({ artifact: "file:///x/{sha}.tgz" })))
  await run(consul.put(keys.release("shop", SHA), JSON.stringify({})))
  for (let n = 0; n < NODES; n++) await run(consul.put(keys.status("shop", `web-${n}`), statusOf(`web-${n}`, "ready")))

  const relay = await countingRelay(addr)
  t.after(() => relay.close())
  const metrics = new Metrics()
  const decodes = () => metrics.get("sacar_report_decodes_total", { app: "shop" })
  const loop = fork(
    reportLoop({ keys, github: undefined, publicUrl: undefined, metrics }).pipe(
      Effect.provide(Layer.fresh(consulLayer({ address: relay.url, tls: { verify: true } })))
    )
  )
  t.after(() => loop.interrupt())
  await eventually("the loop to read the app", () => decodes() > 0, 20_000)
  // The first read downloads every status once (base64 in JSON: 4/3 of the document).
  assert.ok(relay.served() > NODES * oneStatus, `first read: ${relay.served()} bytes`)
  await sleep(1_000)

  const before = { served: relay.served(), decodes: decodes() }
  await run(consul.put(keys.status("shop", "web-7"), statusOf("web-7", "install")))
  await eventually("the loop to see the status change", () => decodes() > before.decodes, 10_000)
  await sleep(1_000) // anything the change still makes the loop read counts too
  const served = relay.served() - before.served
  t.diagnostic(`served after one status write: ${served} bytes (one status ${oneStatus}, all ${NODES * oneStatus})`)
  // The changed status (base64, about 4/3 of it), the key names of the app (about 40 bytes
  // each), and the transactions' and headers' overhead; a re-read of the app is NODES statuses.
  assert.ok(
    served < 6 * oneStatus,
    `after one status write Consul served the controller ${served} bytes; one status is ${oneStatus}, all ${NODES} are ${
      NODES * oneStatus
    }`
  )
})
