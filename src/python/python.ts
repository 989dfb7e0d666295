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
import { runProcess } from "../process/run.ts"
import type { ProcessFailed, ProcessTimedOut, RunOptions } from "../process/run.ts"
import { findInterpreter, listVersions } from "./interpreter.ts"
import type { Interpreter, PythonNotFound } from "./interpreter.ts"
import { sharedPip } from "./pip.ts"
import type { PipUnavailable } from "./pip.ts"

export type { Interpreter, PythonNotFound } from "./interpreter.ts"
export type { PipUnavailable } from "./pip.ts"

/** How the venv's command runs: where, with what environment, as whom, for how long. */
type VenvProcess = Omit<RunOptions, "command" | "args">

export class Python extends Context.Service<Python, {
  /** `version` is a release's `python-version` (`3.11`); without it `fallback` (SACAR_PYTHON) is used. */
  readonly resolve: (
    request: { readonly version?: string | undefined; readonly fallback: string }
  ) => Effect.Effect<Interpreter, PythonNotFound>
  /** The `X.Y` versions usable here, e.g. `["3.11", "3.12"]`, for the node registration's `pythons`. */
  readonly listVersions: (fallback: string) => Effect.Effect<ReadonlyArray<string>>
  /** A directory `d` for `<venv>/bin/python d/pip ...`, unpacked once under `cacheDir`. */
  readonly pip: (interpreter: Interpreter, cacheDir: string) => Effect.Effect<string, PipUnavailable>
  /**
   * Makes a venv without pip at `venv` with `interpreter`. A service method, not a step
   * of its own, so a stand-in (test/support/python-stand-in.ts) can make one without
   * starting a process: a thousand simulated nodes in one process cannot afford a spawn each.
   */
  readonly createVenv: (
    interpreter: Interpreter,
    venv: string,
    run: VenvProcess
  ) => Effect.Effect<void, ProcessFailed | ProcessTimedOut>
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
    pip: sharedPip,
    createVenv: (interpreter, venv, run) =>
      runProcess({
        ...run,
        command: interpreter.path,
        // -I: a release's own top-level module (a logging.py) must not shadow the stdlib venv imports.
        args: ["-I", "-m", "venv", "--without-pip", venv]
      }).pipe(Effect.asVoid)
  })
