// The node reconciler under failures production meets (issue 11, "Must show"): link
// chains, process trees that outlive their step, a host answering 503, a freeze, a
// Consul outage while the pre-deploy result is written, a deploy slot lost mid-deploy.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFile, stat } from "node:fs/promises"
import { createServer, request, type Server } from "node:http"
import { join } from "node:path"
import { after, describe, test, type TestContext } from "node:test"
import { promisify } from "node:util"
import { eventually, sleep } from "../support/eventually.ts"
import { type Kv } from "../support/kv.ts"
import { writeTarball } from "../support/tarballs.ts"
import {
  appConfig,
  closeConsul,
  consul,
  deploySettled,
  freshKv,
  randomSha,
  releaseEntries,
  releaseSettled,
  SETTLE_MS,
  startReconciler,
  SUITE_MS,
  tempDir
} from "./harness.ts"

after(closeConsul)

const exec = promisify(execFile)
const exists = (path: string) => stat(path).then(() => true, () => false)

/** Pids of the processes whose command line holds `marker`. */
const pidsWith = async (marker: string): Promise<number[]> => {
  const { stdout } = await exec("ps", ["-eo", "pid=,args="])
  return stdout.split("\n").filter((l) => l.includes(marker)).map((l) => Number(l.trim().split(/\s+/)[0]))
}

/** A unique marker; whatever still carries it when the test ends is killed (by pid). */
const markerFor = (t: TestContext, label: string) => {
  const marker = `sacar-e2e-${label}-${randomBytes(4).toString("hex")}`
  t.after(async () => {
    for (const pid of await pidsWith(marker)) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // gone
      }
    }
  })
  return marker
}

/** Shell lines starting a grandchild that ignores SIGTERM, then waiting on it. */
const stubbornGrandchild = (marker: string) => `sh -c "trap '' TERM; sleep 300 # ${marker}" &\nwait`

const deploy = async (kv: Kv, sha: string, extra: Record<string, unknown> = {}): Promise<number> => {
  await kv.put("shop/deploy", { sha, requestedBy: "test", requestedAt: new Date().toISOString(), ...extra })
  return (await kv.raw("shop/deploy"))!.modifyIndex
}

describe("the reconciler under real failures", { concurrency: true, timeout: SUITE_MS }, () => {
  test("a chain of links resolving outside the release is refused, naming the entry; nothing is written outside", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "chain")
    const root = join(dir, "root")
    const artifact = await writeTarball(dir, "chain.tgz", [
      ...releaseEntries({}),
      { name: "./a/", type: "dir" },
      { name: "./a/b/", type: "dir" },
      { name: "./a/b/c/", type: "dir" },
      { name: "./a/b/c/s", type: "symlink", linkname: "../../.." },
      { name: "./t", type: "symlink", linkname: "a/b/c/s/../../../.." }
    ])
    await kv.put("shop/config", appConfig(artifact.url))
    const r = startReconciler(t, { addr, prefix: kv.prefix, node: "web-1", root })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    const settled = await releaseSettled(kv, "shop", "web-1", sha, SETTLE_MS, r.output)
    assert.equal(settled.phase, "failed", JSON.stringify(settled))
    assert.match(settled.message, /"\.\/t".*outside the release/)
    assert.equal(await exists(join(root, "shop", "releases", sha)), false)
  })

  test("a grandchild ignoring SIGTERM is gone after a cancelled prepare and after a prepareTimeout", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "tree")
    const marker = markerFor(t, "prepare")
    // No requirements: only a venv before bin/prepare, so it starts well within the timeout.
    const artifact = await writeTarball(dir, "tree.tgz", [
      { name: "./", type: "dir" },
      { name: "./bin/", type: "dir" },
      {
        name: "./bin/prepare",
        mode: 0o755,
        content: `#!/bin/sh
${stubbornGrandchild(`${marker}-$COMMIT_SHA`)}
`
      }
    ])
    await kv.put("shop/config", appConfig(artifact.url, { prepareTimeout: "20s" }))
    const r = startReconciler(t, { addr, prefix: kv.prefix, node: "web-1", root: join(dir, "root") })

    // Cancelled: the ReleaseSpec is deleted while bin/prepare runs.
    const cancelled = randomSha()
    await kv.put(`shop/releases/${cancelled}`, {})
    await eventually(
      "bin/prepare to start its grandchild",
      async () => (await pidsWith(`${marker}-${cancelled}`)).length > 0 ? true : undefined,
      SETTLE_MS,
      r.output
    )
    await kv.delete(`shop/releases/${cancelled}`)
    await eventually(
      "the cancelled release to leave the status",
      async () => {
        const s = await kv.status("shop", "web-1")
        return s?.releases?.[cancelled] === undefined ? true : undefined
      },
      60_000,
      r.output
    )
    assert.deepEqual(await pidsWith(`${marker}-${cancelled}`), [], "the grandchild outlived the cancelled prepare")

    // Timed out: bin/prepare never finishes.
    const slow = randomSha()
    await kv.put(`shop/releases/${slow}`, {})
    const settled = await releaseSettled(kv, "shop", "web-1", slow, SETTLE_MS, r.output)
    assert.equal(settled.phase, "failed")
    assert.match(settled.message, /prepareTimeout|did not finish/)
    assert.deepEqual(await pidsWith(`${marker}-${slow}`), [], "the grandchild outlived the prepareTimeout")
  })

  test("a grandchild ignoring SIGTERM is gone after its deploy is superseded", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "supersede")
    const marker = markerFor(t, "deploy")
    // The first run hangs with a stubborn grandchild; any later run succeeds at once.
    const artifact = await writeTarball(
      dir,
      "shop.tgz",
      releaseEntries({
        deploy: `if [ ! -e ${dir}/first ]; then touch ${dir}/first; ${stubbornGrandchild(marker)}; fi`
      }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(artifact.url, { deployTimeout: "5m" }))
    const r = startReconciler(t, { addr, prefix: kv.prefix, node: "web-1", root: join(dir, "root") })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    assert.equal((await releaseSettled(kv, "shop", "web-1", sha, SETTLE_MS, r.output)).phase, "ready")
    await deploy(kv, sha)
    await eventually(
      "bin/deploy to start its grandchild",
      async () => (await pidsWith(marker)).length > 0 ? true : undefined,
      SETTLE_MS,
      r.output
    )
    const second = await deploy(kv, sha)
    const settled = await deploySettled(kv, "shop", "web-1", second, SETTLE_MS, r.output)
    assert.equal(settled.phase, "live", JSON.stringify(settled))
    assert.deepEqual(await pidsWith(marker), [], "the superseded bin/deploy's grandchild is still running")
  })

  test("with SACAR_CONCURRENCY=1, a release retrying against a host answering 503 does not stop another from becoming ready", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "503")
    const server: Server = createServer((_req, res) => {
      res.writeHead(503).end("down for maintenance")
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const down = `http://127.0.0.1:${(server.address() as { port: number }).port}/shop.tgz`
    const good = await writeTarball(dir, "good.tgz", releaseEntries({}, { requirements: false }))
    await kv.put("shop/config", appConfig(good.url))
    const r = startReconciler(t, {
      addr,
      prefix: kv.prefix,
      node: "web-1",
      root: join(dir, "root"),
      env: { SACAR_CONCURRENCY: "1" }
    })
    const unreachable = randomSha()
    await kv.put(`shop/releases/${unreachable}`, { artifact: down })
    await eventually(
      "the release on the down host to wait for its retry",
      async () => {
        const rel = (await kv.status("shop", "web-1"))?.releases?.[unreachable]
        return /trying again/.test(rel?.message ?? "") ? rel : undefined
      },
      SETTLE_MS,
      r.output
    )

    const other = randomSha()
    await kv.put(`shop/releases/${other}`, {})
    const settled = await releaseSettled(kv, "shop", "web-1", other, 150_000, r.output)
    assert.equal(settled.phase, "ready", JSON.stringify(settled))
    const waiting = (await kv.status("shop", "web-1")).releases[unreachable]
    assert.notEqual(waiting.phase, "failed", "a host that is down is retried, not a person's problem")
  })

  test("a DeploySpec written during a lock waits and says why, runs not even its pre-deploy, then deploys when unlocked or forced", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "freeze")
    const artifact = await writeTarball(
      dir,
      "shop.tgz",
      releaseEntries({
        preDeploy: `echo "$COMMIT_SHA" >> ${dir}/pre-deploys.log`,
        deploy: `echo "$COMMIT_SHA" >> ${dir}/deploys.log`
      }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(artifact.url))
    const r = startReconciler(t, { addr, prefix: kv.prefix, node: "web-1", root: join(dir, "root") })
    const [first, second] = [randomSha(), randomSha()]
    await kv.put(`shop/releases/${first}`, {})
    await kv.put(`shop/releases/${second}`, {})
    for (const sha of [first, second])
      assert.equal((await releaseSettled(kv, "shop", "web-1", sha, SETTLE_MS, r.output)).phase, "ready")

    const lock = { by: "alice", reason: "black friday freeze", at: new Date().toISOString() }
    const waitsLocked = async (generation: number) => {
      const status = await eventually(
        "the deploy to wait for the lock",
        async () => {
          const s = await kv.status("shop", "web-1")
          return s?.deploy?.generation === generation && s.deploy.phase === "waiting" &&
              /locked by alice.*: black friday freeze/.test(s.deploy.message ?? "")
            ? s
            : undefined
        },
        SETTLE_MS,
        r.output
      )
      // Waiting, not deploying: a few passes later nothing has run.
      await sleep(2_000)
      assert.equal((await kv.status("shop", "web-1")).deploy.phase, "waiting")
      return status
    }

    await kv.put("shop/lock", lock)
    const g1 = await deploy(kv, first)
    const held = await waitsLocked(g1)
    assert.equal(held.current, null)
    // The freeze holds the migrations too: the node reads the lock before the pre-deploy.
    assert.equal(await exists(join(dir, "pre-deploys.log")), false)
    assert.equal(await exists(join(dir, "deploys.log")), false)
    await kv.delete("shop/lock")
    assert.equal((await deploySettled(kv, "shop", "web-1", g1, SETTLE_MS, r.output)).phase, "live")

    await kv.put("shop/lock", lock)
    const g2 = await deploy(kv, second)
    await waitsLocked(g2)
    const g3 = await deploy(kv, second, { force: true, reason: "hotfix" })
    const forced = await deploySettled(kv, "shop", "web-1", g3, SETTLE_MS, r.output)
    assert.equal(forced.phase, "live")
    assert.equal(forced.current, second)
    assert.deepEqual((await readFile(join(dir, "deploys.log"), "utf8")).trim().split("\n"), [first, second])
  })

  test("a Consul outage of 10 s while the pre-deploy result is written runs bin/pre-deploy once", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "outage")
    const proxy = await outageProxy(
      t,
      addr,
      (method, url) => method === "PUT" && url.includes("/locks/predeploy/") && url.includes("release=")
    )
    const artifact = await writeTarball(
      dir,
      "shop.tgz",
      releaseEntries({ preDeploy: `echo run >> ${dir}/pre-deploy.log`, deploy: "true" }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(artifact.url))
    const r = startReconciler(t, { addr: proxy.addr, prefix: kv.prefix, node: "web-1", root: join(dir, "root") })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    assert.equal((await releaseSettled(kv, "shop", "web-1", sha, SETTLE_MS, r.output)).phase, "ready")
    const generation = await deploy(kv, sha)
    const settled = await deploySettled(kv, "shop", "web-1", generation, SETTLE_MS, r.output)
    assert.ok(proxy.outages() >= 1, "the outage never happened")
    assert.equal(settled.phase, "live", JSON.stringify(settled))
    assert.deepEqual((await readFile(join(dir, "pre-deploy.log"), "utf8")).trim().split("\n"), ["run"])
    const record = await kv.json(`shop/locks/predeploy/${generation}`)
    assert.equal(record.phase, "succeeded")
    assert.equal(record.attempt, 1)
  })

  test("a deploy slot's session destroyed under a running bin/deploy stops it", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "slot")
    const marker = markerFor(t, "slot")
    const artifact = await writeTarball(
      dir,
      "shop.tgz",
      releaseEntries({ deploy: `sh -c "sleep 300 # ${marker}"` }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(artifact.url, { deployTimeout: "10m" }))
    const r = startReconciler(t, { addr, prefix: kv.prefix, node: "web-1", root: join(dir, "root") })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    assert.equal((await releaseSettled(kv, "shop", "web-1", sha, SETTLE_MS, r.output)).phase, "ready")
    const generation = await deploy(kv, sha)
    await eventually(
      "bin/deploy to run",
      async () => (await pidsWith(marker)).length > 0 ? true : undefined,
      SETTLE_MS,
      r.output
    )
    const holder = await eventually("the slot's session", async () => {
      for (const key of await kv.keys("shop/locks/deploy/")) {
        if (key.endsWith("/tail")) continue
        const entry = await kv.raw(key.slice(kv.prefix.length + 1))
        if (entry?.session !== undefined) return entry.session
      }
      return undefined
    })
    await kv.destroySession(holder)

    const settled = await deploySettled(kv, "shop", "web-1", generation, 60_000, r.output)
    assert.equal(settled.phase, "failed")
    assert.match(settled.message, /slot lost/)
    assert.equal(settled.current, null)
    await eventually(
      "bin/deploy to be gone",
      async () => (await pidsWith(marker)).length === 0 ? true : undefined,
      15_000
    )
  })
})

/**
 * An HTTP proxy to Consul that, the first time `trigger` matches a request, drops that
 * request and every request for the next 10 seconds (connections reset), as an agent
 * restart or a leader election looks to a client.
 */
const outageProxy = async (
  t: TestContext,
  target: string,
  trigger: (method: string, url: string) => boolean
): Promise<{ addr: string; outages: () => number }> => {
  const upstream = new URL(target)
  let downUntil = 0
  let outages = 0
  const server = createServer((req, res) => {
    const now = Date.now()
    if (outages === 0 && trigger(req.method ?? "", req.url ?? "")) {
      outages += 1
      downUntil = now + 10_000
    }
    if (now < downUntil) {
      req.socket.destroy()
      return
    }
    const forward = request({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    forward.on("error", () => res.destroy())
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  t.after(() =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  )
  return { addr: `http://127.0.0.1:${(server.address() as { port: number }).port}`, outages: () => outages }
}
