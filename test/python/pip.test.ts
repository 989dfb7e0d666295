/**
 * The shared pip (src/python/pip.ts): unpacked and compiled for every venv of the
 * node, with an empty `_manylinux` beside it that must not change what pip accepts.
 */
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { access } from "node:fs/promises"
import { join } from "node:path"
import { test } from "node:test"
import { promisify } from "node:util"
import { COMPILED_MARKER, sharedPip } from "../../src/python/pip.ts"
import { scratch } from "../reconciler/steps/harness.ts"
import { nodePython } from "../support/node-python.ts"

const exec = promisify(execFile)
const exists = (path: string) => access(path).then(() => true, () => false)

/** The "Compatible tags" that `pip debug --verbose` lists, run from `pip` (a folder or the wheel itself) in a bare venv. */
const compatibleTags = async (venv: string, pip: string) => {
  const { stdout } = await exec(join(venv, "bin", "python"), ["-I", join(pip, "pip"), "debug", "--verbose"], {
    env: { PATH: "/usr/bin:/bin" },
    maxBuffer: 16 << 20
  })
  const section = stdout.slice(stdout.indexOf("Compatible tags:"))
  const tags = section.split("\n").slice(1).map((l) => l.trim()).filter((l) => l !== "")
  assert.ok(tags.length > 100, `pip debug listed ${tags.length} tags:\n${stdout}`)
  return tags
}

test("the shared pip is unpacked compiled, and its _manylinux leaves pip's compatible tags as they are", async (t) => {
  const { interpreter } = await nodePython()
  if (interpreter.bundledPip === undefined) return t.skip("this Python bundles no pip")
  const dir = await scratch(t)
  const shared = await Effect.runPromise(sharedPip(interpreter, join(dir, "pip")))
  assert.ok(await exists(join(shared, COMPILED_MARKER)))
  assert.ok(await exists(join(shared, "pip", "__pycache__")), "pip's own modules are compiled")

  const own = await exec(interpreter.path, [
    "-I",
    "-c",
    "import importlib.util; print(importlib.util.find_spec('_manylinux'))"
  ])
  assert.equal(
    await exists(join(shared, "_manylinux.py")),
    own.stdout.trim() === "None",
    "written exactly when the interpreter has no _manylinux of its own"
  )

  const venv = join(dir, "venv")
  await exec(interpreter.path, ["-m", "venv", "--without-pip", venv])
  // The bundled wheel run as it is (a zip) has no _manylinux beside it: pip as shipped.
  const [withShared, asShipped] = await Promise.all([
    compatibleTags(venv, shared),
    compatibleTags(venv, interpreter.bundledPip)
  ])
  assert.deepEqual(withShared, asShipped)
})
