/**
 * Step 5: `pip install --no-index --find-links wheels -r requirements.txt` into the
 * venv, with the shared pip, isolated from every pip setting of the node. A crash
 * half-way leaves no `installed` marker, and the venv step then rebuilds from scratch.
 */
import { Effect } from "effect"
import { access } from "node:fs/promises"
import { join } from "node:path"
import { runProcess } from "../../process/run.ts"
import { Python } from "../../python/python.ts"
import type { Interpreter } from "../../python/python.ts"
import { pipEnvironment } from "./environment.ts"
import { type CommandFailed, commandFailed, PythonUnavailable } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { hasMarker, writeMarker } from "./markers.ts"

export interface InstallInput {
  readonly releaseDir: string
  readonly venv: string
  readonly meta: string
  readonly interpreter: Interpreter
  /** Where the shared pip is unpacked (`releasePaths(...).pipCache`). */
  readonly pipCache: string
  readonly timeoutMs?: number
  /** Told each command's pid, so the lock can name what is running. */
  readonly onSpawn?: (pid: number) => void
}

export const PIP_ARGS = [
  "install",
  "--isolated",
  "--disable-pip-version-check",
  "--no-input",
  "--no-index",
  "--find-links",
  "wheels",
  "-r",
  "requirements.txt"
] as const

export const install = (
  input: InstallInput
): Effect.Effect<{ readonly skipped: boolean }, CommandFailed | PythonUnavailable | LocalFailure, Python> =>
  Effect.gen(function*() {
    if (yield* hasMarker(input.meta, "installed")) return { skipped: true }
    // A release without requirements.txt has nothing to install; its venv is still made.
    const requirements = yield* Effect.promise(() =>
      access(join(input.releaseDir, "requirements.txt")).then(() => true, () => false)
    )
    if (!requirements) {
      yield* writeMarker(input.meta, "installed", { at: new Date().toISOString(), requirements: false }, "install")
      return { skipped: false }
    }
    const python = yield* Python
    const pip = yield* python.pip(input.interpreter, input.pipCache).pipe(
      Effect.mapError((error) =>
        new PythonUnavailable({
          step: "install",
          requested: input.interpreter.version,
          retryable: false,
          log: "",
          message: error.message
        })
      )
    )
    yield* runProcess({
      command: join(input.venv, "bin", "python"),
      args: [join(pip, "pip"), ...PIP_ARGS],
      cwd: input.releaseDir,
      env: pipEnvironment(input.venv),
      ...(input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs }),
      ...(input.onSpawn === undefined ? {} : { onSpawn: input.onSpawn })
    }).pipe(
      Effect.mapError((error) =>
        commandFailed("install", `pip ${PIP_ARGS.join(" ")}`, error, (e) =>
          e._tag === "ProcessTimedOut"
            ? `pip install did not finish in time: ${e.message}`
            : `pip install failed (exit code ${e.exitCode}); a wheel named in requirements.txt may be missing from wheels/ or built for another Python (see the log)`)
      )
    )
    yield* writeMarker(input.meta, "installed", { at: new Date().toISOString() }, "install")
    return { skipped: false }
  })
