// The venv is created with `python -I`: the release directory is the working directory,
// and a top-level module of the app named like a stdlib one must not be imported.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { join } from "node:path"
import { describe, test } from "node:test"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { buildReleaseTarball } from "../../support/tarballs.ts"
import { input, run, scratch, successOf } from "./harness.ts"

const exec = promisify(execFile)

describe("venv", () => {
  test("a release with its own top-level logging.py still gets its venv", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "shadow.tgz"), {
      requirements: null,
      files: { "logging.py": "raise SystemExit('the stdlib logging module was shadowed')\n" }
    })
    const ready = successOf((await run(input(join(dir, "root"), pathToFileURL(tarball.path).href))).exit)
    const python = join(ready.dir, ".venv", "bin", "python")
    const { stdout } = await exec(python, ["-c", "import sys; print(sys.prefix != sys.base_prefix)"], { cwd: "/" })
    assert.equal(stdout.trim(), "True", "the release's venv runs, as a venv")
  })
})
