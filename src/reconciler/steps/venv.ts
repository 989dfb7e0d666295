/**
 * Step 4: the release's virtual environment, `<release>/.venv`, made without pip (pip
 * comes from the shared copy, see src/python/pip.ts). The interpreter is the one the
 * release's `python-version` names, else the node's default. When an earlier release
 * on this node installed the same dependencies with the same interpreter, the venv is
 * a copy of what its install left (reuse.ts) and the install step has nothing to do.
 * A venv without its marker is a crash's leftover and is rebuilt, and so is one whose
 * interpreter has gone (which also voids the install and prepare that built on it).
 * With SACAR_RUN_AS the release is first given to that user (ownership.ts), and the
 * venv is made by that user.
 */
import * as Effect from "effect/Effect"
import { readFile, rm } from "node:fs/promises"
import { join } from "node:path"
import { pathExists } from "../../common/files.ts"
import { nowIso } from "../../common/time.ts"
import { Python } from "../../python/python.ts"
import type { Interpreter } from "../../python/python.ts"
import { planInstall } from "../../python/wheel-installer.ts"
import type { InstallPlan } from "../../python/wheel-installer.ts"
import { AppUser } from "../app-user.ts"
import { dependencyDigest } from "./dependencies.ts"
import type { DependencyDigest } from "./dependencies.ts"
import { pipEnvironment } from "./environment.ts"
import { type CommandFailed, commandFailed, localFailure, PythonUnavailable } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { readMarker, removeMarkers, writeMarker } from "./markers.ts"
import { giveRelease } from "./ownership.ts"
import { copyTemplate, findTemplate } from "./reuse.ts"

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
  /** Where installed dependencies are kept for reuse (`templateStore(root)`). */
  readonly templates: string
  /** Where the shared pip is unpacked: done while the venv is made, for the install step. */
  readonly pipCache: string
}

export interface VenvResult {
  readonly skipped: boolean
  readonly interpreter: Interpreter
  /** Undefined when the venv was already there (install works it out again). */
  readonly dependencies?: DependencyDigest
  /** The release whose installed dependencies were copied, if any (install reports it). */
  readonly copiedFrom?: string
  /** How the install step installs, when the venv step worked it out. */
  readonly plan?: InstallPlan
}

const isInterpreter = (value: unknown): value is Interpreter =>
  typeof value === "object" && value !== null &&
  typeof (value as Interpreter).path === "string" && typeof (value as Interpreter).version === "string"

/** The release's `python-version`, if it has one. */
export const requestedPython = (releaseDir: string): Effect.Effect<string | undefined> =>
  Effect.promise(() =>
    readFile(join(releaseDir, "python-version"), "utf8").then((text) => text.trim() || undefined, () => undefined)
  )

export const ensureVenv = (
  input: VenvInput
): Effect.Effect<VenvResult, PythonUnavailable | CommandFailed | LocalFailure, Python> =>
  Effect.gen(function*() {
    const user = yield* AppUser
    yield* giveRelease(input.releaseDir, user, "venv")
    const made = yield* readMarker(input.meta, "venv")
    if (isInterpreter(made) && (yield* pathExists(join(input.venv, "bin", "python")))) {
      return { skipped: true, interpreter: made }
    }
    // Half-made, or its interpreter went away: start over, and so must what built on it.
    yield* removeMarkers(input.meta, ["ready", "prepared", "installed", "venv"])
    yield* Effect.tryPromise({
      // A crashed run's command, killed as the lock was taken over, may take a moment to stop writing.
      try: () => rm(input.venv, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }),
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
    const dependencies = yield* dependencyDigest(input.releaseDir, interpreter)
    if (dependencies._tag === "Reusable") {
      const template = yield* findTemplate(input.templates, dependencies.digest)
      if (template !== undefined) {
        const copied = yield* Effect.result(copyTemplate({
          template,
          venv: input.venv,
          owner: user,
          ...(input.onSpawn === undefined ? {} : { onSpawn: input.onSpawn })
        }))
        if (copied._tag === "Success") {
          // The install marker first: a venv marker without it would send pip over the copy.
          yield* writeMarker(input.meta, "installed", {
            at: yield* nowIso,
            digest: dependencies.digest,
            reusedFrom: template.from.sha
          }, "venv")
          yield* writeMarker(input.meta, "venv", interpreter, "venv")
          return { skipped: false, interpreter, dependencies, copiedFrom: template.from.sha }
        }
        yield* Effect.logWarning(`not reusing the dependencies of ${template.from.sha}: ${copied.failure}`)
        yield* Effect.promise(() => rm(input.venv, { recursive: true, force: true }))
      }
    }
    const makeVenv = python.createVenv(interpreter, input.venv, {
      cwd: input.releaseDir,
      env: pipEnvironment(input.venv, user),
      user,
      ...(input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs }),
      ...(input.onSpawn === undefined ? {} : { onSpawn: input.onSpawn })
    }).pipe(
      Effect.mapError((error) =>
        commandFailed("venv", error.command, error, (e) =>
          `creating the venv with Python ${interpreter.version} failed: ${e.message}`)
      )
    )
    // Both cores: while the venv is made, the install is planned and, if pip must install,
    // the shared pip is unpacked (on a node's first release); the install step finds it
    // there. Its failure is the install step's to report.
    const planAndPip = dependencies._tag === "NoRequirements"
      ? Effect.succeed(undefined)
      : planInstall(interpreter, { cwd: input.releaseDir, env: pipEnvironment(input.venv, user), user }).pipe(
        Effect.tap((plan) =>
          plan._tag === "Pip" ? python.pip(interpreter, input.pipCache).pipe(Effect.ignore) : Effect.void
        )
      )
    const [, plan] = yield* Effect.all([makeVenv, planAndPip], { concurrency: 2 })
    yield* writeMarker(input.meta, "venv", interpreter, "venv")
    return { skipped: false, interpreter, dependencies, ...(plan === undefined ? {} : { plan }) }
  })
