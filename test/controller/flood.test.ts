// A flood of large unauthenticated request bodies: the controller decides each route's
// body limit and checks its credentials before reading, caps what it buffers at once,
// and keeps answering signed webhooks while the flood lasts. Its resident memory is
// sampled from /proc throughout.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { request } from "node:http"
import { after, before, describe, it } from "node:test"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { examplePayload, sendWebhook } from "../support/fake-github/webhooks.ts"
import { controllerEnv, type RunningController, startController } from "./harness.ts"

const SECRET = "webhook-secret-for-tests"
const TOKEN = "notify-token-for-tests"
const BODY = Buffer.alloc(8 * 1024 * 1024, "x")
const FLOOD = 48
/** Growth of the controller's RSS over its idle size that the flood may cause. */
const RSS_BOUND_MB = 150

const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m === null ? 0 : Number(m[1]) / 1024
}

/** POSTs BODY to `path`; resolves with the status, or 0 when the connection was cut. */
const post = (url: string, path: string, headers: Record<string, string>): Promise<number> =>
  new Promise((resolve) => {
    const req = request(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(BODY.length), ...headers }
    }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
      res.on("error", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", () => resolve(0))
    req.end(BODY)
  })

describe("controller under a flood of large unauthenticated bodies", { skip: process.platform !== "linux" }, () => {
  let consul: TestConsul
  let controller: RunningController

  before(async () => {
    consul = await startConsul()
    controller = await startController(
      controllerEnv({ consul: consul.addr, prefix: randomPrefix(), webhookSecret: SECRET, notifyToken: TOKEN })
    )
  })
  after(async () => {
    await controller?.stop()
    await consul?.close()
  })

  it("keeps its memory flat and answers signed webhooks while the flood lasts", async () => {
    const pid = controller.child.pid!
    const idle = rssMb(pid)
    let peak = idle
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(pid))
    }, 20)
    try {
      const kinds: ReadonlyArray<readonly [string, Record<string, string>]> = [
        // A signature that is wrong: the body must be read to know it.
        ["/github/webhook", { "x-github-event": "push", "x-hub-signature-256": `sha256=${"0".repeat(64)}` }],
        ["/github/webhook", { "x-github-event": "push", "x-hub-signature-256": `sha256=${"0".repeat(64)}` }],
        ["/github/webhook", { "x-github-event": "push" }],
        ["/v1/apps/shop/releases", {}],
        ["/v1/apps/shop/releases", { authorization: "Bearer wrong" }],
        ["/healthz", {}]
      ]
      const flood = Array.from(
        { length: FLOOD },
        (_, i) => post(controller.url, kinds[i % kinds.length]![0], kinds[i % kinds.length]![1])
      )
      // Signed webhooks sent during the flood are answered.
      const answered: number[] = []
      for (let i = 0; i < 3; i++) {
        const started = performance.now()
        const res = await sendWebhook(`${controller.url}/github/webhook`, SECRET, "ping", examplePayload("ping"))
        assert.equal(res.status, 200, res.body)
        answered.push(performance.now() - started)
      }
      const statuses = await Promise.all(flood)
      assert.ok(
        statuses.every((s) => s === 0 || s === 401 || s === 413 || s === 503 || s === 405),
        `no flood request is accepted: ${statuses.join(",")}`
      )
      assert.ok(Math.max(...answered) < 8_000, `signed webhooks answered in ${answered.map(Math.round).join(", ")} ms`)
    } finally {
      clearInterval(sampler)
    }
    const growth = peak - idle
    console.log(`controller RSS: idle ${idle.toFixed(0)} MB, peak ${peak.toFixed(0)} MB under ${FLOOD} x 8 MB bodies`)
    assert.ok(growth < RSS_BOUND_MB, `RSS grew by ${growth.toFixed(0)} MB (bound ${RSS_BOUND_MB} MB)`)
    const healthz = await fetch(`${controller.url}/healthz`)
    assert.equal(healthz.status, 200)
  })
})
