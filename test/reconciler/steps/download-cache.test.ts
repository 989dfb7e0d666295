/** An artifact with a sha256 is fetched once per node; later uses take the node's copy. */
import assert from "node:assert/strict"
import { readdir, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, test } from "node:test"
import { pathToFileURL } from "node:url"
import { buildReleaseTarball } from "../../support/tarballs.ts"
import { failureOf, input, run, scratch, successOf } from "./harness.ts"

describe("the artifact cache", { concurrency: true }, () => {
  test("a second release of the same artifact (by sha256) is not fetched again", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), { requirements: null })
    const artifact = { url: pathToFileURL(tarball.path).href, sha256: tarball.sha256 }
    successOf((await run(input(root, artifact.url, { sha: "1".repeat(40), artifact }))).exit)
    assert.deepEqual(await readdir(join(root, ".sacar", "artifacts")), [`${tarball.sha256}.tgz`])
    // The artifact host loses it: the node still has it.
    await rm(tarball.path)
    successOf((await run(input(root, artifact.url, { sha: "2".repeat(40), artifact }))).exit)
  })

  test("a cached artifact whose bytes changed on disk is not used", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), { requirements: null })
    const artifact = { url: pathToFileURL(tarball.path).href, sha256: tarball.sha256 }
    successOf((await run(input(root, artifact.url, { sha: "1".repeat(40), artifact }))).exit)
    await rm(tarball.path)
    await writeFile(join(root, ".sacar", "artifacts", `${tarball.sha256}.tgz`), "corrupted")
    const error = failureOf((await run(input(root, artifact.url, { sha: "2".repeat(40), artifact }))).exit)
    assert.equal(error.step, "download")
    assert.deepEqual(await readdir(join(root, ".sacar", "artifacts")), [])
  })
})
