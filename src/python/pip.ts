/**
 * One pip for every venv. A venv made `--without-pip` takes a tenth of the time of
 * one that bootstraps pip through ensurepip, and installing into it with the
 * interpreter's bundled pip gives the same result. Running pip straight from the
 * bundled wheel (a zip) recompiles pip on every run, because nothing can cache
 * bytecode inside a zip; so the wheel is unpacked once into a cache directory and
 * byte-compiled there before it is put in place. Compiled up front, not as pip first
 * runs: with SACAR_RUN_AS pip runs as an app's user, who may read the shared copy but
 * not write it (a planted `.pyc` would run in every other app's installs).
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { access, mkdir, rename, rm } from "node:fs/promises"
import { basename, join } from "node:path"
import { runProcess } from "../process/run.ts"
import type { Interpreter } from "./interpreter.ts"

export class PipUnavailable extends Data.TaggedError("PipUnavailable")<{
  readonly interpreter: string
  readonly message: string
}> {}

/**
 * How every release's requirements are installed (run in the release directory).
 * `--no-compile`: the installed files are byte-compiled afterwards on every core
 * (compile.ts), with the same result.
 */
export const PIP_ARGS = [
  "install",
  "--no-compile",
  "--isolated",
  "--disable-pip-version-check",
  "--no-input",
  "--no-index",
  "--find-links",
  "wheels",
  "-r",
  "requirements.txt"
] as const

const exists = (path: string) => Effect.promise(() => access(path).then(() => true, () => false))

/**
 * A directory `d` such that `<venv python> d/pip install ...` runs pip.
 * Safe to call concurrently: the unpacked copy appears by an atomic rename.
 * `mark`: variables added to the unpacking processes' environment, so whoever started
 * them can find them (the demo marks its processes with its folder).
 */
export const sharedPip = (
  interpreter: Interpreter,
  cacheDir: string,
  mark: Readonly<Record<string, string>> = {}
): Effect.Effect<string, PipUnavailable> =>
  Effect.gen(function*() {
    const wheel = interpreter.bundledPip
    if (wheel === undefined) {
      return yield* new PipUnavailable({
        interpreter: interpreter.path,
        message:
          `${interpreter.path} (Python ${interpreter.version}) has no bundled pip wheel (ensurepip/_bundled); install the full Python (with ensurepip) on the node`
      })
    }
    const target = join(cacheDir, basename(wheel, ".whl"))
    if (yield* exists(join(target, "pip", "__main__.py"))) return target
    const staging = `${target}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`
    yield* Effect.gen(function*() {
      yield* Effect.promise(() => mkdir(cacheDir, { recursive: true }))
      const env = { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", ...mark }
      yield* runProcess({
        command: interpreter.path,
        args: ["-m", "zipfile", "-e", wheel, staging],
        env,
        timeoutMs: 60_000
      })
      // -d: tracebacks name where the files will be, not the staging directory.
      yield* runProcess({
        command: interpreter.path,
        args: ["-I", "-m", "compileall", "-q", "-j", "0", "-d", target, staging],
        env,
        timeoutMs: 120_000
      })
      yield* Effect.tryPromise(() => rename(staging, target)).pipe(
        // Someone else unpacked the same wheel first; theirs is as good as ours.
        Effect.catch(() =>
          exists(join(target, "pip", "__main__.py")).pipe(
            Effect.flatMap((there) =>
              there ? Effect.void : Effect.fail(new Error(`cannot move ${staging} to ${target}`))
            )
          )
        )
      )
    }).pipe(
      Effect.ensuring(Effect.promise(() => rm(staging, { recursive: true, force: true }))),
      Effect.mapError((error) =>
        new PipUnavailable({
          interpreter: interpreter.path,
          message: `could not unpack ${wheel} into ${cacheDir}: ${error.message}`
        })
      )
    )
    return target
  })
