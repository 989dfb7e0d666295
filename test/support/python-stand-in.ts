/**
 * A Python service that starts no process, for simulated fleets (bench/scale.ts) and
 * tests that prepare releases without requirements or scripts: the interpreter is
 * `/bin/true`, and a venv is a directory whose `bin/python` links to it, made in this
 * process. Everything else the reconciler does (its steps, markers, status writes and
 * every request to Consul) is its own code, unchanged; a release that asks pip to
 * install something fails here, as it would with a Python that has no pip.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { mkdir, symlink } from "node:fs/promises"
import { join } from "node:path"
import { ProcessFailed } from "../../src/process/run.ts"
import { PipUnavailable } from "../../src/python/pip.ts"
import { Python } from "../../src/python/python.ts"
import type { Interpreter } from "../../src/python/python.ts"

const STAND_IN_INTERPRETER: Interpreter = {
  path: "/bin/true",
  version: "3.12.0",
  minor: "3.12",
  bundledPip: undefined
}

export const pythonStandIn = (): Python["Service"] =>
  Python.of({
    resolve: () => Effect.succeed(STAND_IN_INTERPRETER),
    listVersions: () => Effect.succeed([STAND_IN_INTERPRETER.minor]),
    pip: () =>
      Effect.fail(
        new PipUnavailable({
          interpreter: STAND_IN_INTERPRETER.path,
          message: "the Python stand-in has no pip: give the release no requirements.txt"
        })
      ),
    createVenv: (interpreter, venv) =>
      Effect.tryPromise({
        try: async () => {
          await mkdir(join(venv, "bin"), { recursive: true })
          await symlink(interpreter.path, join(venv, "bin", "python"))
        },
        catch: (cause) =>
          new ProcessFailed({
            command: `(stand-in) venv ${venv}`,
            exitCode: 1,
            signal: null,
            tail: "",
            message: `the stand-in could not make ${venv}: ${String(cause)}`
          })
      })
  })

export const pythonStandInLayer: Layer.Layer<Python> = Layer.sync(Python, pythonStandIn)
