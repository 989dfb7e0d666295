/**
 * Finding Python interpreters on PATH. A name on PATH is not enough: pyenv puts a shim
 * for every version it knows on PATH, and a shim fails unless that version is
 * selected. So every candidate is run once, and what is used afterwards is the real
 * executable it reports (no shim, and no dependence on the caller's environment).
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { access, constants, readdir } from "node:fs/promises"
import { delimiter, join } from "node:path"
import { runProcess } from "../process/run.ts"

export interface Interpreter {
  /** The real executable (`sys.executable`). */
  readonly path: string
  /** `3.11.7` */
  readonly version: string
  /** `3.11` */
  readonly minor: string
  /** The pip wheel bundled with the interpreter's ensurepip, when there is one. */
  readonly bundledPip: string | undefined
}

export class PythonNotFound extends Data.TaggedError("PythonNotFound")<{
  /** What the release or the setting asked for, e.g. `3.99`. */
  readonly requested: string
  readonly message: string
}> {}

const PROBE = [
  "import sys, os, glob, json, platform",
  "bundled = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), 'ensurepip', '_bundled', 'pip-*.whl')))",
  "print(json.dumps({'executable': sys.executable, 'version': platform.python_version(), 'pip': bundled[-1] if bundled else None}))"
].join("\n")

/**
 * `-S`: what the probe reports does not depend on site-packages, and skipping `site`
 * makes the start ten times cheaper (0.01 instead of 0.1 CPU-s with pyenv's Python); a
 * reconciler probes every Python on its PATH when it starts, and again for each release.
 */
const PROBE_ARGS = ["-S", "-c", PROBE]

/** The parent's environment minus what changes how Python starts. */
const probeEnv = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith("PYTHON"))
  )

/** Run `candidate` and describe it, or say why it is unusable. */
export const probe = (candidate: string): Effect.Effect<Interpreter, string> =>
  runProcess({ command: candidate, args: PROBE_ARGS, env: probeEnv(), timeoutMs: 15_000, killGraceMs: 1000 }).pipe(
    Effect.mapError((error) => `${candidate}: ${error.tail.trim().split("\n")[0] || error.message}`),
    Effect.flatMap(({ tail }) => {
      try {
        const line = tail.trim().split("\n").at(-1) ?? ""
        const info = JSON.parse(line) as { executable: string; version: string; pip: string | null }
        const minor = info.version.split(".").slice(0, 2).join(".")
        return Effect.succeed({
          path: info.executable || candidate,
          version: info.version,
          minor,
          bundledPip: info.pip ?? undefined
        })
      } catch {
        return Effect.fail(`${candidate}: unexpected output ${JSON.stringify(tail.slice(-200))}`)
      }
    })
  )

const isExecutable = (file: string) => Effect.promise(() => access(file, constants.X_OK).then(() => true, () => false))

/** Every `command` on PATH in order, as a full path. */
export const onPath = (command: string, searchPath: string): Effect.Effect<ReadonlyArray<string>> =>
  command.includes("/")
    ? Effect.succeed([command])
    : Effect.filter(
      searchPath.split(delimiter).filter((dir) => dir !== "").map((dir) => join(dir, command)),
      isExecutable
    )

const VERSION_REQUEST = /^(?:python)?(\d+(?:\.\d+){0,2})$/

/**
 * The interpreter for a `python-version` request (`3.11` selects `python3.11`; `3.11.7`
 * also requires that exact version) or, without one, for `fallback` (a command or a path).
 */
export const findInterpreter = (
  request: { readonly version?: string | undefined; readonly fallback: string },
  searchPath: string
): Effect.Effect<Interpreter, PythonNotFound> =>
  Effect.gen(function*() {
    const wanted = request.version?.trim()
    let command = request.fallback
    let exact: string | undefined
    if (wanted !== undefined && wanted !== "") {
      const match = VERSION_REQUEST.exec(wanted)
      if (!match) {
        return yield* new PythonNotFound({
          requested: wanted,
          message: `python-version ${JSON.stringify(wanted)} is not a version; write it like 3.11`
        })
      }
      const parts = match[1]!.split(".")
      command = `python${parts.slice(0, 2).join(".")}`
      if (parts.length === 3) exact = match[1]
    }
    const requested = wanted || request.fallback
    const candidates = yield* onPath(command, searchPath)
    const rejected: Array<string> = []
    for (const candidate of candidates) {
      const found = yield* Effect.result(probe(candidate))
      if (found._tag === "Failure") {
        rejected.push(found.failure)
      } else if (exact !== undefined && found.success.version !== exact) {
        rejected.push(`${candidate} is ${found.success.version}`)
      } else {
        return found.success
      }
    }
    return yield* new PythonNotFound({
      requested,
      message: [
        `no usable ${command}${exact ? ` (version ${exact})` : ""} on PATH for python ${requested}`,
        candidates.length === 0 ? `searched ${searchPath}` : `tried: ${rejected.join("; ")}`,
        "install that Python on the node, or change the release's python-version"
      ].join("; ")
    })
  })

/** The `X.Y` versions that work on this machine, for the node's registration. */
export const listVersions = (searchPath: string, fallback: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function*() {
    const names = new Set<string>([fallback, "python3"])
    for (const dir of searchPath.split(delimiter).filter((d) => d !== "")) {
      const entries = yield* Effect.promise(() => readdir(dir).catch(() => [] as Array<string>))
      for (const entry of entries) if (/^python\d+\.\d+$/.test(entry)) names.add(entry)
    }
    const found = yield* Effect.forEach(
      [...names],
      (name) =>
        Effect.result(findInterpreter(
          name.startsWith("python") && name !== "python3" && name !== fallback
            ? { version: name.slice("python".length), fallback }
            : { fallback: name },
          searchPath
        )),
      { concurrency: 4 }
    )
    const versions = new Set(found.flatMap((r) => r._tag === "Success" ? [r.success.minor] : []))
    return [...versions].sort((a, b) => {
      const [am = 0, an = 0] = a.split(".").map(Number)
      const [bm = 0, bn = 0] = b.split(".").map(Number)
      return am - bm || an - bn
    })
  })
