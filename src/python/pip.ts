/**
 * One pip for every venv. A venv made `--without-pip` takes a tenth of the time of
 * one that bootstraps pip through ensurepip, and installing into it with the
 * interpreter's bundled pip gives the same result. Running pip straight from the
 * bundled wheel (a zip) recompiles pip on every run, because nothing can cache
 * bytecode inside a zip; so the wheel is unpacked once into a cache directory.
 *
 * The unpacked copy is byte-compiled by the reconciler as it is unpacked, not as pip
 * runs: with SACAR_RUN_AS pip runs as an app's user, who may read the shared copy but
 * not write it (a planted `.pyc` would run in every other app's installs). Unpacking
 * and compiling are one pass on every core, before pip's first run: pip from an
 * uncompiled copy compiles in its own single thread what it imports (about 1.5 CPU-s),
 * while the core pip leaves idle is wanted for compiling the release's wheels beside
 * it (src/python/compile.ts). See docs/decisions.md.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { mkdir, rename, rm, writeFile } from "node:fs/promises"
import { availableParallelism } from "node:os"
import { basename, join } from "node:path"
import { pathExists } from "../common/files.ts"
import { runProcess } from "../process/run.ts"
import type { Interpreter } from "./interpreter.ts"

export class PipUnavailable extends Data.TaggedError("PipUnavailable")<{
  readonly interpreter: string
  readonly message: string
}> {}

/**
 * How every release's requirements are installed (run in the release directory).
 * `--no-compile`: the installed files are byte-compiled afterwards on every core
 * (compile.ts), with the same result. `--no-warn-conflicts`: the venv starts empty, so
 * what is installed is exactly what pip's resolver chose as one consistent set, and the
 * check pip runs afterwards (7% of its time with 31 wheels) could only repeat it.
 */
export const PIP_ARGS = [
  "install",
  "--no-compile",
  "--no-warn-conflicts",
  "--isolated",
  "--disable-pip-version-check",
  "--no-input",
  "--no-index",
  "--find-links",
  "wheels",
  "-r",
  "requirements.txt"
] as const

const TOOL_ENV = { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" }

/** Written into the unpacked pip once all of it is compiled. */
export const COMPILED_MARKER = ".sacar-compiled"

/*
 * MANYLINUX_NOTE: pip works out the platform tags it accepts once per candidate wheel,
 * and each time asks `import _manylinux` (PEP 600: a distribution may ship that module
 * to declare which manylinux tags its glibc cannot run) for each of some seventy tags.
 * Where no such module exists every one of those imports fails after searching the
 * whole path: about 2,000 failed imports, 0.15-0.2 CPU-s of a 31-wheel install. An
 * empty `_manylinux` beside pip answers them at once with the same meaning (a module
 * without the PEP's attributes overrides nothing: packaging's `_is_compatible` returns
 * true as it does on ImportError). It is written only when the interpreter has no
 * `_manylinux` of its own, which it would otherwise hide. test/python/pip.test.ts checks
 * that pip's compatible tags are the same with it.
 */

/**
 * Unpack share argv 4 of argv 5 of the wheel (argv 1) into a staging directory (argv 2),
 * compiling each `.py` as it comes out; the bytecode names the files under the
 * directory the staging one becomes (argv 3). One process per share, each started by
 * the reconciler, rather than a pool inside one: with the kernel's autogroups (on by
 * default) a session gets one share of a busy machine however many processes it forks,
 * and the reconciler starts each command in a session of its own.
 */
const UNPACK_AND_COMPILE = String.raw`
import importlib.util, os, py_compile, sys, zipfile
WHEEL, STAGING, TARGET, SHARE, SHARES = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

# See MANYLINUX_NOTE.
if SHARE == 0 and importlib.util.find_spec("_manylinux") is None:
    os.makedirs(STAGING, exist_ok=True)
    with open(os.path.join(STAGING, "_manylinux.py"), "w") as f:
        f.write("# Empty: no override of manylinux compatibility (PEP 600), found at once (src/python/pip.ts).\n")
    py_compile.compile(os.path.join(STAGING, "_manylinux.py"), dfile=os.path.join(TARGET, "_manylinux.py"), quiet=1)

with zipfile.ZipFile(WHEEL) as z:
    members = sorted(z.infolist(), key=lambda i: (-i.file_size, i.filename))[SHARE::SHARES]
    # The folders first, tolerating the other shares' (zipfile makes them unguarded).
    for m in members:
        folder = m.filename if m.is_dir() else os.path.dirname(m.filename)
        os.makedirs(os.path.join(STAGING, *folder.split("/")), exist_ok=True)
    for m in members:
        path = z.extract(m, STAGING)
        if m.filename.endswith(".py"):
            # As compileall: a file that does not compile keeps no bytecode (nor would it import).
            py_compile.compile(path, dfile=os.path.join(TARGET, *m.filename.split("/")), quiet=1)
`

/**
 * A directory `d` such that `<venv python> d/pip install ...` runs pip, compiled.
 * Safe to call concurrently: the unpacked copy appears by an atomic rename, compiled
 * and marked.
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
    if (yield* pathExists(join(target, "pip", "__main__.py"))) return target
    const staging = `${target}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`
    yield* Effect.gen(function*() {
      yield* Effect.promise(() => mkdir(cacheDir, { recursive: true }))
      const shares = availableParallelism()
      yield* Effect.all(
        Array.from({ length: shares }, (_, share) =>
          runProcess({
            command: interpreter.path,
            args: ["-I", "-c", UNPACK_AND_COMPILE, wheel, staging, target, String(share), String(shares)],
            env: { ...TOOL_ENV, ...mark },
            timeoutMs: 300_000
          })),
        { concurrency: "unbounded" }
      )
      yield* Effect.tryPromise(() => writeFile(join(staging, COMPILED_MARKER), ""))
      yield* Effect.tryPromise(() => rename(staging, target)).pipe(
        // Someone else unpacked the same wheel first; theirs is as good as ours.
        Effect.catch(() =>
          pathExists(join(target, "pip", "__main__.py")).pipe(
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

/**
 * Byte-compile the shared pip at `dir`, as the reconciler, once: for a copy unpacked
 * without its bytecode (by an earlier version of Sacar, which compiled it beside pip
 * and may have been cut short). The marker says it is done, and a run cut short
 * leaves none, so the next one finishes it (compileall skips what is already
 * compiled; its writes are atomic renames, so pip running meanwhile reads a whole
 * `.pyc` or none). One worker: it runs beside pip.
 */
export const compileSharedPip = (
  interpreter: Interpreter,
  dir: string,
  mark: Readonly<Record<string, string>> = {}
): Effect.Effect<void, PipUnavailable> =>
  Effect.gen(function*() {
    const marker = join(dir, COMPILED_MARKER)
    if (yield* pathExists(marker)) return
    yield* runProcess({
      command: interpreter.path,
      args: ["-I", "-m", "compileall", "-q", dir],
      env: { ...TOOL_ENV, ...mark },
      timeoutMs: 300_000
    })
    yield* Effect.tryPromise(() => writeFile(marker, ""))
  }).pipe(
    Effect.mapError((error) =>
      new PipUnavailable({
        interpreter: interpreter.path,
        message: `could not byte-compile the shared pip in ${dir}: ${error.message}`
      })
    )
  )
