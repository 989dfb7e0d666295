// Two reconcilers with separate roots prepare a release written to Consul KV over
// plain HTTP, report it ready with step timings, and leave a working venv.
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { readFile, readlink, stat } from "node:fs/promises"
import { join } from "node:path"
import { after, describe, test } from "node:test"
import { writeTarball } from "../support/tarballs.ts"
import {
  appConfig,
  closeConsul,
  freshKv,
  randomSha,
  releaseEntries,
  releaseSettled,
  SETTLE_MS,
  startReconciler,
  SUITE_MS,
  tempDir
} from "./harness.ts"
import { consul } from "./harness.ts"

after(closeConsul)

describe("preparing a release", { concurrency: true, timeout: SUITE_MS }, () => {
  test("two nodes prepare it: ready, step timings, a venv that imports the wheels, bin/prepare saw COMMIT_SHA", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "prep")
    const artifact = await writeTarball(
      dir,
      "shop.tgz",
      releaseEntries({
        prepare: "echo \"$COMMIT_SHA $SACAR_APP $SACAR_NODE\" > prepared.txt\necho \"prepare ran\""
      })
    )
    await kv.put("shop/config", appConfig(`file://${dir}/{sha}.tgz`))
    // web-1 has never prepared a release (it unpacks the shared pip); web-2 has, as most nodes have.
    const nodes = [
      startReconciler(t, { addr, prefix: kv.prefix, node: "web-1", root: join(dir, "root1"), firstUse: true }),
      startReconciler(t, { addr, prefix: kv.prefix, node: "web-2", root: join(dir, "root2") })
    ]
    const sha = randomSha()
    await kv.put(`shop/releases/${sha}`, {
      artifact: { url: artifact.url, sha256: artifact.sha256 },
      createdAt: new Date().toISOString()
    })

    for (const n of nodes) {
      const r = await releaseSettled(kv, "shop", n.node, sha, SETTLE_MS, n.output)
      assert.equal(r.phase, "ready", `${n.node}: ${r.message}\n${r.log ?? ""}\n${n.output()}`)
      assert.match(r.message, /^prepared in \d+(\.\d)?s$/)
      assert.equal(r.attempt, 1)
      assert.equal(typeof r.specIndex, "number")
      for (const step of ["download", "extract", "lock", "venv", "install", "prepare"]) {
        assert.equal(typeof r.steps[step]?.ms, "number", `${n.node} step ${step}: ${JSON.stringify(r.steps)}`)
      }
      assert.ok(Date.parse(r.startedAt) <= Date.parse(r.finishedAt))
      const release = join(n.root, "shop", "releases", sha)
      assert.equal((await readFile(join(release, "prepared.txt"), "utf8")).trim(), `${sha} shop ${n.node}`)
      const out = execFileSync(join(release, ".venv", "bin", "python"), [
        "-c",
        "import greeting; print(greeting.hello('sacar'))"
      ], {
        encoding: "utf8"
      })
      assert.equal(out.trim(), "HELLO SACAR!")
    }
    const registration = await kv.json(`_nodes/web-1`)
    assert.equal(registration.node, "web-1")
    assert.ok(
      Array.isArray(registration.pythons) && registration.pythons.includes("3.11"),
      JSON.stringify(registration)
    )
    const status = await kv.status("shop", "web-2")
    assert.equal(status.node, "web-2")
    assert.equal(status.current, null)
    assert.equal(status.deploy, null)
    await assert.rejects(readlink(join(nodes[0]!.root, "shop", "current")))

    // SIGTERM deregisters (the session is destroyed, so the key goes at once) and exits 0.
    assert.equal(await nodes[0]!.kill("SIGTERM"), 0)
    assert.equal(await kv.raw(`_nodes/web-1`), undefined)
    await stat(join(nodes[0]!.root, "shop", "releases", sha, ".sacar", "ready"))
  })
})
