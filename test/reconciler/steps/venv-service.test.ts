// The venv step makes the venv through the Python service, so a stand-in (a simulated
// fleet's, test/support/python-stand-in.ts) replaces the interpreter's process.
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import assert from "node:assert/strict"
import { lstat, readlink } from "node:fs/promises"
import { join } from "node:path"
import { test } from "node:test"
import { pathToFileURL } from "node:url"
import { ArtifactStore, makeArtifactStore } from "../../../src/artifacts/store.ts"
import { Python } from "../../../src/python/python.ts"
import { prepareRelease } from "../../../src/reconciler/steps/pipeline.ts"
import { pythonStandIn } from "../../support/python-stand-in.ts"
import { buildReleaseTarball } from "../../support/tarballs.ts"
import { input, scratch, SHA, successOf } from "./harness.ts"

test("the venv step asks the Python service to make the venv: a stand-in makes it in-process, once", async (t) => {
  const dir = await scratch(t)
  const root = join(dir, "root")
  const tarball = await buildReleaseTarball(join(dir, "src", "app.tgz"), { requirements: null })
  const standIn = pythonStandIn()
  const made: Array<string> = []
  const python = Python.of({
    ...standIn,
    createVenv: (interpreter, venv, run) =>
      Effect.sync(() => void made.push(venv)).pipe(Effect.andThen(standIn.createVenv(interpreter, venv, run)))
  })
  const exit = await Effect.runPromiseExit(
    prepareRelease(input(root, pathToFileURL(tarball.path).href), () => Effect.void).pipe(
      Effect.provide(Layer.mergeAll(Layer.succeed(ArtifactStore, makeArtifactStore()), Layer.succeed(Python, python)))
    )
  )
  const ready = successOf(exit)
  const venv = join(root, "shop", "releases", SHA, ".venv")
  assert.deepEqual(made, [venv])
  assert.equal(ready.venv, venv)
  assert.ok((await lstat(join(venv, "bin", "python"))).isSymbolicLink())
  assert.equal(await readlink(join(venv, "bin", "python")), "/bin/true")
  assert.equal(ready.python.path, "/bin/true")
})
