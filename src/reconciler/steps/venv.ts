/**
 * Step 4: the release's virtual environment, `<release>/.venv`, made without pip (pip
 * comes from the shared copy, see src/python/pip.ts). The interpreter is the one the
 * release's `python-version` names, else the node's default. A venv without its marker
 * is a crash's leftover and is rebuilt, and so is one whose interpreter has gone
 * (which also voids the install and prepare that built on it).
 */
import { Effect } from "effect"
import { access, readFile, rm } from "node:fs/promises"
import { join } from "node:path"
import { runProcess } from "../../process/run.ts"
import { Python } from "../../python/python.ts"
import type { Interpreter } from "../../python/python.ts"
import { pipEnvironment } from "./environment.ts"
import { type CommandFailed, commandFailed, localFailure, PythonUnavailable } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { readMarker, removeMarkers, writeMarker } from "./markers.ts"

export interface VenvInput {
  readonly releaseDir: string
  readonly venv: string
  /** `<release>/.sacar` */
  readonly meta: string
  /** SACAR_PYTHON: a command on PATH or a path. */
  readonly defaultPython: string
  readonly timeoutMs?: number
  /** Told each command's pid, so the lock can name what is running. */
  readonly onSpawn?: (pid: number) => void
}

export interface VenvResult {
  readonly skipped: boolean
  readonly interpreter: Interpreter
}

const isInterpreter = (value: unknown): value is Interpreter =>
  typeof value === "object" && value !== null &&
  typeof (value as Interpreter).path === "string" && typeof (value as Interpreter).version === "string"

const exists = (file: string) => Effect.promise(() => access(file).then(() => true, () => false))

/** The release's `python-version`, if it has one. */
export const requestedPython = (releaseDir: string): Effect.Effect<string | undefined> =>
  Effect.promise(() =>
    readFile(join(releaseDir, "python-version"), "utf8").then((text) => text.trim() || undefined, () => undefined)
  )

export const ensureVenv = (
  input: VenvInput
): Effect.Effect<VenvResult, PythonUnavailable | CommandFailed | LocalFailure, Python> =>
  Effect.gen(function*() {
    const made = yield* readMarker(input.meta, "venv")
    if (isInterpreter(made) && (yield* exists(join(input.venv, "bin", "python")))) {
      return { skipped: true, interpreter: made }
    }
    // Half-made, or its interpreter went away: start over, and so must what built on it.
    yield* removeMarkers(input.meta, ["ready", "prepared", "installed", "venv"])
    yield* Effect.tryPromise({
      try: () => rm(input.venv, { recursive: true, force: true }),
      catch: (cause) => localFailure("venv", `cannot remove the unfinished ${input.venv}`, cause)
    })

    const python = yield* Python
    const version = yield* requestedPython(input.releaseDir)
    const interpreter = yield* python.resolve({ version, fallback: input.defaultPython }).pipe(
      Effect.mapError((error) =>
        new PythonUnavailable({
          step: "venv",
          requested: error.requested,
          retryable: false,
          log: "",
          message: error.message
        })
      )
    )
    yield* runProcess({
      command: interpreter.path,
      args: ["-I", "-m", "venv", "--without-pip", input.venv],
      cwd: input.releaseDir,
      env: pipEnvironment(input.venv),
      ...(input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs }),
      ...(input.onSpawn === undefined ? {} : { onSpawn: input.onSpawn })
    }).pipe(
      Effect.mapError((error) =>
        commandFailed("venv", error.command, error, (e) =>
          `creating the venv with Python ${interpreter.version} failed: ${e.message}`)
      )
    )
    yield* writeMarker(input.meta, "venv", interpreter, "venv")
    return { skipped: false, interpreter }
  })
