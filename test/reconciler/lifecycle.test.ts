// A release's life on one node: interrupted by the deletion of its spec, by kill -9 at
// each step (then a restart), and retention across ten releases with failures.
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { readdir, readFile, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { after, describe, test } from "node:test"
import { isAlive as alive } from "../../src/process/alive.ts"
import { eventually } from "../support/eventually.ts"
import { type Kv } from "../support/kv.ts"
import { rawTarball, writeTarball } from "../support/tarballs.ts"
import type { WheelSpec } from "../support/wheels.ts"
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
  slowServer,
  startReconciler,
  SUITE_MS,
  tempDir,
  WHEELS
} from "./harness.ts"

after(closeConsul)

const exists = (path: string) => stat(path).then(() => true, () => false)

const phaseOf = async (kv: Kv, app: string, node: string, sha: string): Promise<string | undefined> =>
  (await kv.status(app, node))?.releases?.[sha]?.phase

const venvWorks = (root: string, app: string, sha: string) =>
  execFileSync(join(root, app, "releases", sha, ".venv", "bin", "python"), [
    "-c",
    "import greeting; print(greeting.hello('x'))"
  ], {
    encoding: "utf8"
  }).trim()

/** A wheel with many modules, so that pip takes long enough to be caught installing it. */
const bulky: WheelSpec = {
  name: "bulky",
  version: "1.0",
  modules: Object.fromEntries(
    Array.from(
      { length: 1500 },
      (_, i) => [`bulky/m${i}.py`, `VALUE = ${i}\n${"def f(x):\n    return x + 1\n".repeat(20)}`]
    )
  )
}

describe("release lifecycle", { concurrency: 3, timeout: SUITE_MS }, () => {
  test("a ReleaseSpec deleted while preparing: its processes are killed, its directory and status entry removed", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "cancel")
    const artifact = await writeTarball(
      dir,
      "slow.tgz",
      releaseEntries({
        prepare: `sleep 300 &\necho $! > "${dir}/grandchild.pid"\necho $$ > "${dir}/prepare.pid"\nwait`
      }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(artifact.url))
    const node = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root: join(dir, "root") })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    const pids = await eventually(
      "bin/prepare to start",
      async () => {
        try {
          const a = Number(await readFile(join(dir, "prepare.pid"), "utf8"))
          const b = Number(await readFile(join(dir, "grandchild.pid"), "utf8"))
          return a > 0 && b > 0 ? [a, b] : undefined
        } catch {
          return undefined
        }
      },
      SETTLE_MS,
      node.output
    )
    assert.ok(pids.every(alive))
    await kv.delete(`shop/releases/${sha}`)
    await eventually(
      "the release to be cleaned up",
      async () => {
        const gone = !(await exists(join(dir, "root", "shop", "releases", sha)))
        const forgotten = (await kv.status("shop", "solo"))?.releases?.[sha] === undefined
        return gone && forgotten && !pids.some(alive) ? true : undefined
      },
      30_000,
      node.output
    )
    assert.equal(node.child.exitCode, null)
  })

  test("SIGTERM while bin/prepare runs: its processes are killed, the node deregistered, exit 0; a restart finishes it", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "term")
    const artifact = await writeTarball(
      dir,
      "term.tgz",
      releaseEntries({
        prepare:
          `if [ ! -e "${dir}/once" ]; then touch "${dir}/once"; sleep 300 & echo $! > "${dir}/grandchild.pid"; wait; fi`
      }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(artifact.url))
    const root = join(dir, "root")
    const node = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    const pid = await eventually(
      "bin/prepare to start",
      async () => {
        try {
          const n = Number(await readFile(join(dir, "grandchild.pid"), "utf8"))
          return n > 0 ? n : undefined
        } catch {
          return undefined
        }
      },
      SETTLE_MS,
      node.output
    )
    assert.equal(await node.kill("SIGTERM"), 0, node.output())
    await eventually("the script's processes to be gone", async () => (alive(pid) ? undefined : true), 10_000)
    assert.equal(await kv.raw("_nodes/solo"), undefined)
    assert.notEqual((await kv.status("shop", "solo"))?.releases?.[sha]?.phase, "ready")
    const again = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    assert.equal((await releaseSettled(kv, "shop", "solo", sha, SETTLE_MS, again.output)).phase, "ready")
  })

  test("apps appear, move off the node and come back without a restart", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "member")
    const artifact = await writeTarball(dir, "m.tgz", releaseEntries({}, { requirements: false }))
    const node = startReconciler(t, { addr, prefix: kv.prefix, node: "web-7", root: join(dir, "root") })
    await eventually("registration", () => kv.raw("_nodes/web-7"), SETTLE_MS, node.output)
    await kv.put("shop/config", appConfig(artifact.url, { nodes: ["db-*"] }))
    await kv.put("shop/deploy", "{not json")
    await kv.put("blog/config", appConfig(artifact.url, { nodes: ["web-?"] }))
    // blog is served (a status appears); shop is not this node's.
    await eventually("blog's status", () => kv.status("blog", "web-7"), 30_000, node.output)
    assert.equal(await kv.status("shop", "web-7"), undefined)
    await kv.put("shop/config", appConfig(artifact.url, { nodes: ["db-*", "web-7"] }))
    const error = await eventually(
      "shop's status with the DeploySpec error",
      async () => (await kv.status("shop", "web-7"))?.error,
      30_000,
      node.output
    )
    assert.match(error, new RegExp(`${kv.prefix}/shop/deploy: not valid JSON`))
    await kv.put("blog/config", appConfig(artifact.url, { nodes: ["db-*"] }))
    await eventually(
      "blog's status to be withdrawn",
      async () => ((await kv.status("blog", "web-7")) === undefined ? true : undefined),
      30_000,
      node.output
    )
    await kv.delete("shop/config")
    await eventually(
      "shop's status to be withdrawn",
      async () => ((await kv.status("shop", "web-7")) === undefined ? true : undefined),
      30_000,
      node.output
    )
    assert.equal(node.child.exitCode, null)
  })

  test("a deploy of a sha without a ReleaseSpec prepares it first, then goes live", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "implied")
    const artifact = await writeTarball(
      dir,
      "i.tgz",
      releaseEntries({ deploy: `echo "$COMMIT_SHA" > "${dir}/deployed"` }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(`file://${dir}/{short}.tgz`))
    const sha = randomSha()
    await writeFile(join(dir, `${sha.slice(0, 7)}.tgz`), await readFile(artifact.path))
    const root = join(dir, "root")
    const node = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    await kv.put("shop/deploy", { sha })
    const generation = (await kv.raw("shop/deploy"))!.modifyIndex
    const d = await deploySettled(kv, "shop", "solo", generation, SETTLE_MS, node.output)
    assert.equal(d.phase, "live", d.message)
    assert.equal(d.current, sha)
    assert.equal((await readFile(join(dir, "deployed"), "utf8")).trim(), sha)
    const status = await kv.status("shop", "solo")
    assert.equal(status.releases[sha].phase, "ready")
    assert.equal(status.releases[sha].specIndex, generation)
  })

  test("kill -9 during download, then a restart: ready with a correct venv", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "crash-dl")
    const bytes = rawTarball(releaseEntries({ prepare: "true" }))
    const server = await slowServer(t, bytes, Math.ceil(bytes.length / 40), 100)
    await kv.put("shop/config", appConfig(server.url))
    const root = join(dir, "root")
    const first = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    await eventually(
      "the download",
      async () => ((await phaseOf(kv, "shop", "solo", sha)) === "download" && server.requests() > 0 ? true : undefined),
      SETTLE_MS,
      first.output
    )
    await first.kill("SIGKILL")
    const second = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const r = await releaseSettled(kv, "shop", "solo", sha, SETTLE_MS, second.output)
    assert.equal(r.phase, "ready", r.message)
    assert.ok(server.requests() >= 2)
    assert.equal(venvWorks(root, "shop", sha), "HELLO X!")
    assert.deepEqual((await readdir(join(root, "shop", "releases"))).sort(), [sha])
  })

  test("kill -9 during install, then a restart: ready with a correct venv", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "crash-pip")
    const artifact = await writeTarball(
      dir,
      "bulky.tgz",
      releaseEntries({ prepare: "true" }, {
        wheels: [...WHEELS, bulky],
        requirements: "greeting==2.1\nbulky==1.0\n"
      })
    )
    await kv.put("shop/config", appConfig(artifact.url))
    const root = join(dir, "root")
    const first = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    await eventually(
      "the install",
      async () => ((await phaseOf(kv, "shop", "solo", sha)) === "install" ? true : undefined),
      SETTLE_MS,
      first.output
    )
    await first.kill("SIGKILL")
    const second = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const r = await releaseSettled(kv, "shop", "solo", sha, SETTLE_MS, second.output)
    assert.equal(r.phase, "ready", `${r.message}\n${r.log ?? ""}`)
    assert.equal(venvWorks(root, "shop", sha), "HELLO X!")
    const out = execFileSync(join(root, "shop", "releases", sha, ".venv", "bin", "python"), [
      "-c",
      "import bulky.m1499 as m; print(m.VALUE)"
    ], { encoding: "utf8" })
    assert.equal(out.trim(), "1499")
  })

  test("kill -9 during bin/prepare, then a restart: bin/prepare runs again and the release is ready", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "crash-prep")
    const artifact = await writeTarball(
      dir,
      "prep.tgz",
      releaseEntries({
        prepare: `echo run >> "${dir}/runs"
if [ ! -e "${dir}/first" ]; then
  touch "${dir}/first"
  i=0; while [ $i -lt 600 ] && [ ! -e "${dir}/stop" ]; do sleep 0.1; i=$((i+1)); done
  exit 9
fi`
      })
    )
    await kv.put("shop/config", appConfig(artifact.url))
    const root = join(dir, "root")
    const first = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {})
    await eventually(
      "bin/prepare",
      async () => ((await exists(join(dir, "first"))) ? true : undefined),
      SETTLE_MS,
      first.output
    )
    await first.kill("SIGKILL")
    await writeFile(join(dir, "stop"), "")
    const second = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const r = await releaseSettled(kv, "shop", "solo", sha, SETTLE_MS, second.output)
    assert.equal(r.phase, "ready", `${r.message}\n${r.log ?? ""}`)
    assert.equal((await readFile(join(dir, "runs"), "utf8")).trim().split("\n").length, 2)
    assert.equal(venvWorks(root, "shop", sha), "HELLO X!")
  })

  test("retention across ten releases with failures: exactly current, previous and what is still wanted", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "retain")
    const good = await writeTarball(
      dir,
      "good.tgz",
      releaseEntries({ prepare: "true", deploy: "true" }, { requirements: false })
    )
    const bad = await writeTarball(
      dir,
      "bad.tgz",
      releaseEntries({ prepare: "echo no; exit 1" }, { requirements: false })
    )
    await kv.put("shop/config", appConfig(good.url))
    const root = join(dir, "root")
    const node = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root })
    const shas = Array.from({ length: 10 }, () => randomSha())
    const failing = new Set([2, 5, 8])
    const base = Date.parse("2026-11-27T10:00:00Z")
    for (const [i, sha] of shas.entries()) {
      await kv.put(`shop/releases/${sha}`, {
        ...(failing.has(i) ? { artifact: bad.url } : {}),
        createdAt: new Date(base + i * 60_000).toISOString()
      })
    }
    for (const [i, sha] of shas.entries()) {
      assert.equal(
        (await releaseSettled(kv, "shop", "solo", sha, SETTLE_MS, node.output)).phase,
        failing.has(i) ? "failed" : "ready"
      )
    }
    for (const i of [6, 7, 9]) {
      await kv.put("shop/deploy", { sha: shas[i], requestedAt: new Date().toISOString() })
      const generation = (await kv.raw("shop/deploy"))!.modifyIndex
      assert.equal((await deploySettled(kv, "shop", "solo", generation, SETTLE_MS, node.output)).phase, "live")
    }
    // The controller's retention deletes old specs; the deploy target and #8 (failed) stay wanted.
    for (let i = 0; i < 8; i++) await kv.delete(`shop/releases/${shas[i]}`)
    // A release failed for good keeps its status entry (it is not retried) but not its files.
    const expected = [shas[7]!, shas[8]!, shas[9]!].sort()
    const expectedOnDisk = [shas[7]!, shas[9]!].sort()
    await eventually(
      "retention on disk and in the status",
      async () => {
        const onDisk = (await readdir(join(root, "shop", "releases"))).sort()
        const status = await kv.status("shop", "solo")
        const recorded = Object.keys(status?.releases ?? {}).sort()
        return JSON.stringify(onDisk) === JSON.stringify(expectedOnDisk) &&
            JSON.stringify(recorded) === JSON.stringify(expected)
          ? true
          : undefined
      },
      60_000,
      node.output
    )
    const status = await kv.status("shop", "solo")
    assert.equal(status.current, shas[9])
    assert.equal(status.previous, shas[7])
    assert.equal(status.releases[shas[8]!].phase, "failed")

    // The failed one's spec goes too: its status entry goes with it.
    await kv.delete(`shop/releases/${shas[8]}`)
    await eventually(
      "the failed release to go",
      async () => {
        const onDisk = (await readdir(join(root, "shop", "releases"))).sort()
        const recorded = Object.keys((await kv.status("shop", "solo"))?.releases ?? {}).sort()
        return JSON.stringify(onDisk) === JSON.stringify(expectedOnDisk) &&
            JSON.stringify(recorded) === JSON.stringify(expectedOnDisk)
          ? true
          : undefined
      },
      60_000,
      node.output
    )
  })
})
