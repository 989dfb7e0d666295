// The venv is created with `python -I`: the release directory is the working directory,
// and a top-level module of the app named like a stdlib one must not be imported.
import { access } from "node:fs/promises"
import { join } from "node:path"
import { describe, test } from "node:test"
import { pathToFileURL } from "node:url"
import { buildReleaseTarball } from "../../support/tarballs.ts"
import { input, run, scratch, successOf } from "./harness.ts"

describe("venv", () => {
  test("a release with its own top-level logging.py still gets its venv", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "shadow.tgz"), {
      requirements: null,
      files: { "logging.py": "raise SystemExit('the stdlib logging module was shadowed')\n" }
    })
    const ready = successOf((await run(input(join(dir, "root"), pathToFileURL(tarball.path).href))).exit)
    await access(join(ready.dir, ".venv", "bin", "python"))
  })
})
