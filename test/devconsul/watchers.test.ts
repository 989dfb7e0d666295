// dev-consul's own promise: thousands of blocked watchers are cheap, all wake on a
// write, and a watcher that hangs up leaves nothing behind. Uses dev-consul directly:
// a real Consul limits connections per client (http_max_conns_per_client, 200).

import assert from "node:assert/strict"
import { Agent, request } from "node:http"
import { test } from "node:test"
import { startDevConsul } from "../../src/devconsul/server.ts"
import { randomPrefix } from "../support/consul.ts"
import { eventually, sleep } from "../support/eventually.ts"

function get(
  agent: Agent,
  url: string,
  signal?: AbortSignal
): Promise<{ status: number; index: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, signal }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d: string) => (body += d))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, index: Number(res.headers["x-consul-index"]), body }))
    })
    req.on("error", reject)
    req.end()
  })
}

test("1000 blocked watchers all wake on one write", async (t) => {
  const dev = await startDevConsul({ port: 0 })
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
  t.after(async () => {
    agent.destroy()
    await dev.close()
  })
  const p = randomPrefix()
  await fetch(`${dev.url}/v1/kv/${p}/seed`, { method: "PUT", body: "0" })
  const first = await get(agent, `${dev.url}/v1/kv/${p}/?recurse`)

  const watchers = Array.from(
    { length: 1000 },
    () => get(agent, `${dev.url}/v1/kv/${p}/?recurse&index=${first.index}&wait=30s`)
  )
  // A setup deadline, not a figure: 1000 requests reach the server in a few seconds on a
  // quiet machine, and took over 15 s with the rest of the suite on both cores.
  await eventually("1000 blocked watchers", () => dev.store.listenerCount === 1000, 60_000)
  // A write elsewhere does not wake watchers of a prefix that has its own index.
  await fetch(`${dev.url}/v1/kv/other-${p}`, { method: "PUT", body: "x" })
  await sleep(50)
  assert.equal(dev.store.listenerCount, 1000)

  await fetch(`${dev.url}/v1/kv/${p}/new`, { method: "PUT", body: "1" })
  const woken = await Promise.all(watchers)
  for (const w of woken) {
    assert.equal(w.status, 200)
    assert.ok(w.index > first.index)
    assert.match(w.body, /"Key":"[^"]+\/new"/)
  }
  assert.equal(dev.store.listenerCount, 0)
})

test("a watcher that hangs up is forgotten", async (t) => {
  const dev = await startDevConsul({ port: 0 })
  const agent = new Agent({ keepAlive: true })
  t.after(async () => {
    agent.destroy()
    await dev.close()
  })
  const p = randomPrefix()
  await fetch(`${dev.url}/v1/kv/${p}/k`, { method: "PUT", body: "v" })
  const first = await get(agent, `${dev.url}/v1/kv/${p}/k`)
  const abort = new AbortController()
  const pending = get(agent, `${dev.url}/v1/kv/${p}/k?index=${first.index}&wait=5m`, abort.signal).catch(() =>
    "aborted"
  )
  await eventually("the watcher to block", () => dev.store.listenerCount === 1, 5_000)
  abort.abort()
  assert.equal(await pending, "aborted")
  await eventually("the watcher to be gone", () => dev.store.listenerCount === 0, 5_000)
})
