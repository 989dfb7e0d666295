/**
 * Python: the interpreters this node can build venvs with, and the shared pip used
 * to install into them. A service so tests and the loop can swap it, though the real
 * one only needs PATH.
 */
import { Context, Effect, Layer } from "effect"
import { findInterpreter, listVersions } from "./interpreter.ts"
import type { Interpreter, PythonNotFound } from "./interpreter.ts"
import { sharedPip } from "./pip.ts"
import type { PipUnavailable } from "./pip.ts"

export type { Interpreter, PythonNotFound } from "./interpreter.ts"
export type { PipUnavailable } from "./pip.ts"

export class Python extends Context.Service<Python, {
  /** `version` is a release's `python-version` (`3.11`); without it `fallback` (SACAR_PYTHON) is used. */
  readonly resolve: (
    request: { readonly version?: string | undefined; readonly fallback: string }
  ) => Effect.Effect<Interpreter, PythonNotFound>
  /** The `X.Y` versions usable here, e.g. `["3.11", "3.12"]`, for the node registration's `pythons`. */
  readonly listVersions: (fallback: string) => Effect.Effect<ReadonlyArray<string>>
  /** A directory `d` for `<venv>/bin/python d/pip ...`, unpacked once under `cacheDir`. */
  readonly pip: (interpreter: Interpreter, cacheDir: string) => Effect.Effect<string, PipUnavailable>
}>()("sacar/Python") {
  /** Searches the PATH the process had when the layer was built. */
  static readonly layer: Layer.Layer<Python> = Layer.sync(Python, () => makePython(process.env.PATH ?? ""))
}

export const makePython = (searchPath: string): Python["Service"] =>
  Python.of({
    resolve: (request) => findInterpreter(request, searchPath),
    listVersions: (fallback) => listVersions(searchPath, fallback),
    pip: sharedPip
  })
