/**
 * Python: the interpreters this node can build venvs with, and the shared pip used
 * to install into them. A service so tests and the loop can swap it, though the real
 * one only needs PATH.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { stat } from "node:fs/promises"
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

/** How long a resolved interpreter is trusted without looking at PATH again. */
const RESOLVED_TTL_MS = 60_000

/**
 * Resolving runs every candidate interpreter once, a cost each release would pay; so
 * an answer is kept for a minute, and only while its executable is unchanged.
 */
const memoisedResolve = (searchPath: string): Python["Service"]["resolve"] => {
  const known = new Map<string, { readonly interpreter: Interpreter; readonly mtimeMs: number; readonly at: number }>()
  const mtimeOf = (path: string) => Effect.promise(() => stat(path).then((s) => s.mtimeMs, () => undefined))
  return (request) =>
    Effect.gen(function*() {
      const key = JSON.stringify([request.version ?? null, request.fallback])
      const now = yield* Clock.currentTimeMillis
      const hit = known.get(key)
      if (
        hit !== undefined && now - hit.at < RESOLVED_TTL_MS && (yield* mtimeOf(hit.interpreter.path)) === hit.mtimeMs
      ) {
        return hit.interpreter
      }
      const interpreter = yield* findInterpreter(request, searchPath)
      const mtimeMs = yield* mtimeOf(interpreter.path)
      if (mtimeMs !== undefined) known.set(key, { interpreter, mtimeMs, at: now })
      return interpreter
    })
}

export const makePython = (searchPath: string): Python["Service"] =>
  Python.of({
    resolve: memoisedResolve(searchPath),
    listVersions: (fallback) => listVersions(searchPath, fallback),
    pip: sharedPip
  })
