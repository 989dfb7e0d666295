/**
 * Step 5: the release's wheels into the venv, as `pip install --no-index --find-links
 * wheels -r requirements.txt` installs them. Where pip's result is certain (every
 * distribution pinned, see src/python/wheel-installer.ts) they are installed directly on
 * every core; otherwise with the shared pip, isolated from every pip setting of the node
 * (and, on a node's first release, the shared pip's byte-compilation beside it). Either
 * way the installed files are then byte-compiled on every core (compile.ts). A crash
 * half-way leaves no `installed` marker, and the step runs again over what it left
 * (both installers replace a file by unlinking it first).
 * What pip installed is then marked to be kept as a template (reuse.ts) before
 * bin/prepare can change the venv, for the next release with the same dependencies.
 * When the venv step copied such a template, the marker is already there and says from
 * which release.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import { rm } from "node:fs/promises"
import { join } from "node:path"
import { pathExists } from "../../common/files.ts"
import { nowIso } from "../../common/time.ts"
import { runProcess } from "../../process/run.ts"
import type { ProcessFailed, ProcessTimedOut } from "../../process/run.ts"
import { compileInstalled, precompileWheels } from "../../python/compile.ts"
import { compileSharedPip, PIP_ARGS } from "../../python/pip.ts"
import { Python } from "../../python/python.ts"
import type { Interpreter } from "../../python/python.ts"
import { installWheels, planInstall } from "../../python/wheel-installer.ts"
import type { InstallPlan, PlannedWheel } from "../../python/wheel-installer.ts"
import { AppUser } from "../app-user.ts"
import type { RunAs } from "../app-user.ts"
import { dependencyDigest } from "./dependencies.ts"
import type { DependencyDigest } from "./dependencies.ts"
import { pipEnvironment } from "./environment.ts"
import { type CommandFailed, commandFailed, PythonUnavailable } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { readMarker, writeMarker } from "./markers.ts"
import { saveTemplate } from "./reuse.ts"

/** Where the wheels' compiled code waits for pip to finish, inside the venv (compile.ts). */
const BYTECODE_CACHE = ".sacar-bytecode"

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
  /** Where installed dependencies are kept for reuse (`templateStore(root)`). */
  readonly templates: string
  /** SACAR_ROOT */
  readonly root: string
  /** The release, named in the template it leaves. */
  readonly app: string
  readonly sha: string
  /** Worked out by the venv step, when it ran. */
  readonly dependencies?: DependencyDigest | undefined
  /** How to install, when the venv step worked it out. */
  readonly plan?: InstallPlan | undefined
}

export interface InstallResult {
  readonly skipped: boolean
  /** The release whose installed dependencies the venv step copied. */
  readonly reusedFrom?: string
  /** The rest of keeping the template (saveTemplate), for later (later.ts). */
  readonly keeping?: Effect.Effect<void>
  /** The shared pip's byte-compilation, still running: joined before the release is ready. */
  readonly compilingPip?: Fiber.Fiber<void>
}

export const install = (
  input: InstallInput
): Effect.Effect<InstallResult, CommandFailed | PythonUnavailable | LocalFailure, Python | Scope.Scope> =>
  Effect.gen(function*() {
    const done = yield* readMarker(input.meta, "installed")
    if (done !== undefined) {
      const reusedFrom = (done as { reusedFrom?: unknown }).reusedFrom
      return typeof reusedFrom === "string" ? { skipped: true, reusedFrom } : { skipped: true }
    }
    // A release without requirements.txt has nothing to install; its venv is still made.
    const requirements = yield* pathExists(join(input.releaseDir, "requirements.txt"))
    if (!requirements) {
      yield* writeMarker(input.meta, "installed", { at: yield* nowIso, requirements: false }, "install")
      return { skipped: false }
    }
    // The app's user installs into its own venv; the shared pip it reads is not its to change.
    const user = yield* AppUser
    // pip, the direct install and the byte-compile run alike: in the release, as the app's
    // user, under the step's limit.
    const inVenv = {
      cwd: input.releaseDir,
      env: pipEnvironment(input.venv, user),
      user,
      ...(input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs }),
      ...(input.onSpawn === undefined ? {} : { onSpawn: input.onSpawn })
    }
    const venvPython = join(input.venv, "bin", "python")
    const plan = input.plan ?? (yield* planInstall(input.interpreter, { ...inVenv, onSpawn: undefined }))
    const compilingPip = plan._tag === "Direct"
      ? yield* installDirectly(venvPython, plan.wheels, inVenv)
      : yield* Effect.logInfo(`pip installs ${input.app} ${input.sha.slice(0, 12)}: ${plan.why}`).pipe(
        Effect.andThen(installWithPip(input, inVenv))
      )
    const dependencies = input.dependencies ?? (yield* dependencyDigest(input.releaseDir, input.interpreter))
    const keeping = dependencies._tag !== "Reusable" ? undefined : yield* saveTemplate({
      store: input.templates,
      root: input.root,
      digest: dependencies.digest,
      venv: input.venv,
      from: { app: input.app, sha: input.sha },
      ...(input.onSpawn === undefined ? {} : { onSpawn: input.onSpawn })
    })
    yield* writeMarker(input.meta, "installed", {
      at: yield* nowIso,
      ...(dependencies._tag === "Reusable" ? { digest: dependencies.digest } : {})
    }, "install")
    return {
      skipped: false,
      ...(compilingPip === undefined ? {} : { compilingPip }),
      ...(keeping === undefined ? {} : { keeping })
    }
  })

const compileFailed = (error: ProcessFailed | ProcessTimedOut) =>
  commandFailed(
    "install",
    "byte-compiling the installed files",
    error,
    (e) => `byte-compiling what was installed failed: ${e.message}`
  )

interface InVenv {
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  readonly user: RunAs | undefined
  readonly timeoutMs?: number
  readonly onSpawn?: (pid: number) => void
}

/** The planned wheels written as pip writes them, then compiled; nothing left running. */
const installDirectly = (
  venvPython: string,
  wheels: ReadonlyArray<PlannedWheel>,
  inVenv: InVenv
): Effect.Effect<undefined, CommandFailed> =>
  installWheels(venvPython, wheels, inVenv).pipe(
    Effect.mapError((error) =>
      commandFailed("install", "installing the wheels", error, (e) =>
        e._tag === "ProcessTimedOut"
          ? `installing the wheels did not finish in time: ${e.message}`
          : `installing the wheels failed (exit code ${e.exitCode}; see the log)`)
    ),
    Effect.andThen(compileInstalled({ venvPython, ...inVenv }).pipe(Effect.mapError(compileFailed))),
    Effect.as(undefined)
  )

/**
 * pip into the venv, the wheels compiled beside it, then the rest compiled; returns the
 * shared pip's compilation, still running on a node's first release.
 */
const installWithPip = (
  input: InstallInput,
  inVenv: InVenv
): Effect.Effect<Fiber.Fiber<void>, CommandFailed | PythonUnavailable, Python | Scope.Scope> =>
  Effect.gen(function*() {
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
    const runPip = runProcess({
      command: join(input.venv, "bin", "python"),
      args: ["-I", join(pip, "pip"), ...PIP_ARGS],
      ...inVenv
    }).pipe(
      Effect.mapError((error) =>
        commandFailed("install", `pip ${PIP_ARGS.join(" ")}`, error, (e) =>
          e._tag === "ProcessTimedOut"
            ? `pip install did not finish in time: ${e.message}`
            : `pip install failed (exit code ${e.exitCode}); a wheel named in requirements.txt may be missing from wheels/ or built for another Python (see the log)`)
      )
    )
    // On a node's first release the shared pip is compiled (as the reconciler) on the core
    // pip leaves idle; pip meanwhile runs from source. Without bytecode pip is only slower.
    // Not recorded in the lock, which names the one command a takeover must end (pip): a
    // compile outliving a crash only writes whole bytecode files.
    const compilePip = compileSharedPip(input.interpreter, pip).pipe(
      Effect.catch((error) => Effect.logWarning(error.message))
    )
    // Forked, not awaited here: what follows (the parallel compile of what pip installed,
    // the template) does not need it, and on a busy machine it may take longer than pip.
    const compilingPip = yield* Effect.forkScoped(compilePip)
    // The wheels' files compiled ahead, beside pip, into a cache the compile after pip
    // takes from (compile.ts). Inside the venv, where the app's user may write; removed
    // before the template is taken. A crash's leftover is removed here first, and an
    // interrupted precompile (it ends with pip) only leaves less to take.
    const venvPython = join(input.venv, "bin", "python")
    const bytecode = join(input.venv, BYTECODE_CACHE)
    const removeBytecode = Effect.promise(() => rm(bytecode, { recursive: true, force: true }))
    yield* removeBytecode
    const precompiling = yield* Effect.forkScoped(
      // Not told to onSpawn: the lock names pip, the one command a takeover must end.
      precompileWheels({ venvPython, ...inVenv, onSpawn: undefined, wheels: "wheels", cache: bytecode }).pipe(
        Effect.catch((error) => Effect.logWarning(`compiling the wheels ahead failed: ${error.message}`))
      )
    )
    yield* runPip
    yield* Fiber.interrupt(precompiling)
    yield* compileInstalled({ venvPython, ...inVenv, cache: bytecode }).pipe(Effect.mapError(compileFailed))
    yield* removeBytecode
    return compilingPip
  })
