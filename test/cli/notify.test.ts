import assert from "node:assert/strict"
import { createServer } from "node:net"
import { after, before, describe, test } from "node:test"
import { controllerEnv, getJson, putKv, randomSha, startController } from "../controller/harness.ts"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { sleep } from "../support/eventually.ts"
import { runSacar } from "../support/sacar.ts"

const TOKEN = "notify-token-for-tests"

let consul: TestConsul
before(async () => {
  consul = await startConsul()
})
after(() => consul.close())

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

const notify = (controller: string, app: string, sha: string, token: string | undefined, extra: string[] = []) =>
  runSacar(
    ["notify", "--controller", controller, "--app", app, "--sha", sha, ...extra],
    { SACAR_NOTIFY_TOKEN: token },
    90_000
  )

describe("sacar notify against a running controller", { concurrency: true }, () => {
  test("creates the release, then answers 'already known'; a wrong token or app is final", async (t) => {
    const prefix = randomPrefix()
    await putKv(consul.addr, `${prefix}/shop/config`, { artifact: "gs://builds/shop/{sha}.tgz" })
    const controller = await startController(controllerEnv({ consul: consul.addr, prefix, notifyToken: TOKEN }))
    t.after(() => controller.stop())
    const sha = randomSha()
    const sha256 = "d".repeat(64)
    const first = await notify(controller.url, "shop", sha, TOKEN, [
      "--artifact",
      `gs://builds/shop/${sha}.tgz`,
      "--sha256",
      sha256
    ])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /release created: shop/)
    const spec = await getJson(consul.addr, `${prefix}/shop/releases/${sha}`)
    assert.deepEqual(spec.artifact, { url: `gs://builds/shop/${sha}.tgz`, sha256 })
    const again = await notify(controller.url, "shop", sha, TOKEN, [
      "--artifact",
      `gs://builds/shop/${sha}.tgz`,
      "--sha256",
      sha256
    ])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /release already known/)

    const started = Date.now()
    const wrong = await notify(controller.url, "shop", randomSha(), "not-the-token")
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /the controller refused \(401\)/)
    assert.ok(Date.now() - started < 20_000, "a refusal is not retried")
    const unknown = await notify(controller.url, "ghost", randomSha(), TOKEN)
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /refused \(404\)/)
    const noToken = await notify(controller.url, "shop", randomSha(), undefined)
    assert.equal(noToken.code, 2)
    assert.match(noToken.stderr, /SACAR_NOTIFY_TOKEN is not set/)
  })

  test("a controller that is down for a while, then comes back: notify retries and succeeds", async (t) => {
    const prefix = randomPrefix()
    await putKv(consul.addr, `${prefix}/shop/config`, { artifact: "gs://builds/shop/{sha}.tgz" })
    const port = await freePort()
    const sha = randomSha()
    const pending = notify(`http://127.0.0.1:${port}`, "shop", sha, TOKEN)
    await sleep(3_000)
    const controller = await startController({
      ...controllerEnv({ consul: consul.addr, prefix, notifyToken: TOKEN }),
      SACAR_LISTEN: `127.0.0.1:${port}`
    })
    t.after(() => controller.stop())
    const result = await pending
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /ECONNREFUSED.*retrying/)
    assert.match(result.stdout, /release created: shop/)
    const spec = await getJson(consul.addr, `${prefix}/shop/releases/${sha}`)
    assert.equal(spec.source !== undefined || spec.createdAt !== undefined, true)
  })

  test("a controller that never comes back: notify gives up after --timeout with the reason", async () => {
    const port = await freePort()
    const r = await runSacar([
      "notify",
      "--controller",
      `http://127.0.0.1:${port}`,
      "--app",
      "shop",
      "--sha",
      randomSha(),
      "--timeout",
      "3s"
    ], { SACAR_NOTIFY_TOKEN: TOKEN })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /gave up after \d+ attempts: ECONNREFUSED/)
  })
})
