// Releases that must fail, each with a status message a person can act on, while
// the same reconciler keeps serving another app (issue 3, "Must show").
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { readdir, readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import { after, describe, test } from "node:test"
import { eventually } from "../support/eventually.ts"
import { rawTarball, writeTarball } from "../support/tarballs.ts"
import {
  appConfig,
  closeConsul,
  consul,
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

const exists = (path: string) => stat(path).then(() => true, () => false)

describe("failing releases", { concurrency: true, timeout: SUITE_MS }, () => {
  test("each bad release fails with a message naming the problem; the other app is served throughout", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "fail")
    const root = join(dir, "root")
    const outside = join(dir, "outside")
    const good = releaseEntries({ prepare: "echo ok" })

    const cases: Array<{ name: string; spec: () => Promise<object | string>; expect: (r: any) => void }> = [
      {
        name: "traversal",
        spec: async () => {
          const a = await writeTarball(dir, "traversal.tgz", [...good, {
            name: "./../../outside/evil.txt",
            content: "pwned"
          }])
          return { artifact: a.url }
        },
        expect: (r) => assert.match(r.message, /outside\/evil\.txt/)
      },
      {
        name: "link escape",
        spec: async () => {
          const a = await writeTarball(dir, "link.tgz", [...good, {
            name: "./escape",
            type: "symlink",
            linkname: "../../../../outside"
          }])
          return { artifact: a.url }
        },
        expect: (r) => assert.match(r.message, /escape/)
      },
      {
        name: "corrupt gzip",
        spec: async () => {
          const bytes = rawTarball(good)
          const a = await writeTarball(dir, "corrupt.tgz", Buffer.concat([bytes.subarray(0, 40), randomBytes(4000)]))
          return { artifact: a.url }
        },
        expect: (r) => assert.match(r.message, /gzip|corrupt|compress|invalid|header|Z_/i)
      },
      {
        name: "checksum mismatch",
        spec: async () => {
          const a = await writeTarball(dir, "good.tgz", good)
          return { artifact: { url: a.url, sha256: "0".repeat(64) } }
        },
        expect: (r) => assert.match(r.message, /sha256|checksum/i)
      },
      {
        name: "missing wheel",
        spec: async () => {
          const a = await writeTarball(
            dir,
            "nowheel.tgz",
            releaseEntries({}, { requirements: "greeting==2.1\nnotthere==1.0\n" })
          )
          return { artifact: a.url }
        },
        expect: (r) => {
          assert.equal(r.steps.download !== undefined && r.steps.install !== undefined, true, JSON.stringify(r.steps))
          assert.match(`${r.message}\n${r.log}`, /notthere/)
        }
      },
      {
        name: "failing bin/prepare",
        spec: async () => {
          const a = await writeTarball(
            dir,
            "prepfail.tgz",
            releaseEntries({ prepare: "echo \"DATABASE_URL is not set\"\nexit 3" })
          )
          return { artifact: a.url }
        },
        expect: (r) => {
          assert.match(r.message, /exit code 3/)
          assert.match(r.log, /DATABASE_URL is not set/)
        }
      },
      {
        name: "unknown python version",
        spec: async () => {
          const a = await writeTarball(dir, "py.tgz", releaseEntries({}, { pythonVersion: "3.99" }))
          return { artifact: a.url }
        },
        expect: (r) => assert.match(r.message, /python3\.99/)
      },
      {
        name: "ReleaseSpec not JSON",
        spec: async () => "{this is not json",
        expect: (r) => {
          assert.match(r.message, new RegExp(`${kv.prefix}/shop/releases/[0-9a-f]{40}`))
          assert.match(r.message, /not valid JSON/)
        }
      }
    ]

    await kv.put("shop/config", appConfig(`file://${dir}/none/{sha}.tgz`))
    const blog = await writeTarball(dir, "blog.tgz", good)
    await kv.put("blog/config", appConfig(blog.url))
    const node = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root, env: { SACAR_CONCURRENCY: "4" } })

    const shas = new Map<string, string>()
    for (const c of cases) {
      const sha = randomSha()
      shas.set(c.name, sha)
      await kv.put(`shop/releases/${sha}`, await c.spec())
    }
    // The other app gets a release in the middle of all that, and one after.
    const blogFirst = randomSha()
    await kv.put(`blog/releases/${blogFirst}`, {})

    for (const c of cases) {
      const r = await releaseSettled(kv, "shop", "solo", shas.get(c.name)!, SETTLE_MS, node.output)
      assert.equal(r.phase, "failed", `${c.name}: ${JSON.stringify(r)}`)
      assert.equal(r.attempt, 1)
      c.expect(r)
    }
    assert.equal((await releaseSettled(kv, "blog", "solo", blogFirst, SETTLE_MS, node.output)).phase, "ready")
    const blogSecond = randomSha()
    await kv.put(`blog/releases/${blogSecond}`, {})
    assert.equal((await releaseSettled(kv, "blog", "solo", blogSecond, SETTLE_MS, node.output)).phase, "ready")

    // Nothing was written outside the release directories.
    assert.equal(await exists(outside), false)
    assert.equal(await exists(join(root, "outside")), false)
    assert.deepEqual((await readdir(join(root))).filter((n) => !n.startsWith(".")).sort(), ["blog", "shop"])

    // A rewritten spec (new ModifyIndex) retries a failed release: attempt 2.
    const fixed = await writeTarball(dir, "fixed.tgz", good)
    const sha = shas.get("failing bin/prepare")!
    await kv.put(`shop/releases/${sha}`, { artifact: fixed.url })
    const retried = await eventually(
      "the retry",
      async () => {
        const r = (await kv.status("shop", "solo"))?.releases?.[sha]
        return r?.attempt === 2 && (r.phase === "ready" || r.phase === "failed") ? r : undefined
      },
      60_000,
      node.output
    )
    // A retry after `failed` starts clean: the new artifact is fetched and its bin/prepare runs, not the old one's.
    assert.equal(retried.phase, "ready", JSON.stringify(retried))
    assert.doesNotMatch(await readFile(join(root, "shop", "releases", sha, "bin", "prepare"), "utf8"), /exit 3/)
    assert.equal(node.child.exitCode, null, "the reconciler is still running")
  })

  test("an AppConfig with a bad field is reported in the status; the last good one keeps being acted on", async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "cfg")
    const artifact = await writeTarball(dir, "app.tgz", releaseEntries({}, { requirements: false }))
    await kv.put("cfg/config", appConfig(artifact.url))
    const node = startReconciler(t, { addr, prefix: kv.prefix, node: "solo", root: join(dir, "root") })
    const first = randomSha()
    await kv.put(`cfg/releases/${first}`, {})
    assert.equal((await releaseSettled(kv, "cfg", "solo", first, SETTLE_MS, node.output)).phase, "ready")

    await kv.put("cfg/config", { artifact: artifact.url, maxParallel: "two" })
    const error = await eventually(
      "the config error",
      async () => (await kv.status("cfg", "solo"))?.error,
      30_000,
      node.output
    )
    assert.match(error, new RegExp(`${kv.prefix}/cfg/config`))
    assert.match(error, /maxParallel/)
    assert.match(error, /"two"/)

    // Still acting on the last good config: a new release is prepared, the old one kept.
    const second = randomSha()
    await kv.put(`cfg/releases/${second}`, {})
    assert.equal((await releaseSettled(kv, "cfg", "solo", second, SETTLE_MS, node.output)).phase, "ready")
    assert.ok(await exists(join(dir, "root", "cfg", "releases", first, ".sacar", "ready")))

    // Fixed: the error goes away.
    await kv.put("cfg/config", appConfig(artifact.url))
    await eventually(
      "the error to clear",
      async () => ((await kv.status("cfg", "solo"))?.error === undefined ? true : undefined),
      30_000
    )
  })
})
