/**
 * A retry after `failed` starts from what the spec says now: what an earlier attempt
 * left on disk is not trusted, so a corrected re-upload at the same URL is fetched,
 * and a rewritten sha256 is checked against the bytes.
 */
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, test } from "node:test"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { buildReleaseTarball, smallWheels } from "../../support/tarballs.ts"
import { failureOf, input, run, scratch, SHA, successOf } from "./harness.ts"

const exec = promisify(execFile)

describe("a retry after failed", { concurrency: true }, () => {
  test("a corrected re-upload at the same URL becomes ready with the new content", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const tarball = join(dir, "uploads", "app.tgz")
    const url = pathToFileURL(tarball).href
    await buildReleaseTarball(tarball, {
      wheels: smallWheels(2),
      prepare: "#!/bin/sh\necho 'DATABASE_URL is not set'\nexit 3\n",
      files: { "app.py": "VERSION = 'broken'\n" }
    })
    const first = failureOf((await run(input(root, url))).exit)
    assert.equal(first.step, "prepare")

    // CI uploads the corrected build over the same object; the spec is rewritten to retry.
    await buildReleaseTarball(tarball, {
      wheels: smallWheels(2),
      prepare: "#!/bin/sh\necho prepared > prepared.txt\n",
      files: { "app.py": "VERSION = 'fixed'\n" }
    })
    const second = successOf((await run(input(root, url))).exit)
    assert.equal(second.alreadyReady, false)
    const release = join(root, "shop", "releases", SHA)
    assert.equal(await readFile(join(release, "app.py"), "utf8"), "VERSION = 'fixed'\n")
    assert.equal(await readFile(join(release, "prepared.txt"), "utf8"), "prepared\n")
    const { stdout } = await exec(join(release, ".venv", "bin", "python"), ["-c", "import pkg0, pkg1; print('ok')"])
    assert.equal(stdout.trim(), "ok")
  })

  test("a rewritten spec with a wrong sha256 fails, although the earlier attempt's files are on disk", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    // bin/prepare fails until a person fixes the environment; then the spec is rewritten.
    const fixedFlag = join(dir, "database-configured")
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      wheels: smallWheels(2),
      prepare: `#!/bin/sh\ntest -e '${fixedFlag}' || { echo 'DATABASE_URL is not set'; exit 3; }\n`
    })
    const url = pathToFileURL(tarball.path).href
    assert.equal(failureOf((await run(input(root, url))).exit).step, "prepare")
    await writeFile(fixedFlag, "")

    const wrong = "0".repeat(64)
    const error = failureOf((await run(input(root, url, { artifact: { url, sha256: wrong } }))).exit)
    assert.equal(error._tag, "ArtifactUnavailable")
    assert.match(error.message, /checksum mismatch/)
    assert.match(error.message, new RegExp(tarball.sha256))

    // The right checksum: ready.
    successOf((await run(input(root, url, { artifact: { url, sha256: tarball.sha256 } }))).exit)
  })
})
