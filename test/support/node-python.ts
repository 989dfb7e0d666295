/**
 * The Python a test node sees, made cheap to start with and cheap to prepare on.
 *
 * PATH: a reconciler lists every `pythonX.Y` on its PATH at start-up and runs each
 * once (src/python/interpreter.ts). On a developer's machine with pyenv that is a
 * dozen shims, each a bash script and a Python start: about 2.5 CPU-seconds per
 * reconciler start. Test nodes get the directory of the test run's `python3` and the
 * system directories instead, as a node with its Pythons installed normally has.
 *
 * pip: a node's first release unpacks the interpreter's bundled pip into
 * `$SACAR_ROOT/.sacar/pip` and byte-compiles it beside its first pip run
 * (src/python/pip.ts), about 3 CPU-seconds. That happens once in a node's life; so a test node starts as one
 * that has prepared before, its pip a link to one unpacked and compiled once per machine
 * (under os.tmpdir(), keyed by interpreter and wheel). A test about a node's first
 * release asks for a fresh node instead.
 */
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, symlinkSync } from "node:fs"
import { access, mkdir, rename, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { basename, dirname, join } from "node:path"
import { promisify } from "node:util"
import { findInterpreter, type Interpreter } from "../../src/python/interpreter.ts"
import { COMPILED_MARKER } from "../../src/python/pip.ts"
import { SYSTEM_PATH } from "../../src/reconciler/steps/environment.ts"
import { eventually } from "./eventually.ts"

const exec = promisify(execFile)

export interface NodePython {
  readonly interpreter: Interpreter
  /** PATH for a test node: the interpreter's directory, then the system's. */
  readonly path: string
  /**
   * A directory to copy as `<root>/.sacar/pip` (it holds `<wheel name>/pip/...`, compiled),
   * or undefined when the interpreter bundles no pip.
   */
  readonly pipSeed: string | undefined
}

const exists = (path: string) => access(path).then(() => true, () => false)

/** The parent's environment minus what changes how Python starts or writes bytecode. */
const pythonEnv = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith("PYTHON"))
  )

/**
 * `<tmp>/sacar-test-pip-<key>/<wheel name>`: unpacked and byte-compiled by one process
 * (a lock directory), moved into place by a rename; the others wait for it.
 */
const seedPip = async (interpreter: Interpreter, wheel: string): Promise<string> => {
  const { size, mtimeMs } = await stat(wheel)
  const key = createHash("sha256").update(
    JSON.stringify([interpreter.path, interpreter.version, wheel, size, mtimeMs, COMPILED_MARKER])
  )
    .digest("hex").slice(0, 16)
  const seed = join(tmpdir(), `sacar-test-pip-${key}`)
  const ready = join(seed, basename(wheel, ".whl"), "pip", "__main__.py")
  const lock = `${seed}.lock`
  // Built already, or ours to build once we hold the lock; while someone else builds it,
  // wait. A lock left by a killed run is taken over after two minutes.
  const turn = await eventually(
    `${seed} to be built, or its lock free`,
    async () => {
      if (await exists(ready)) return "built"
      if (await mkdir(lock).then(() => true, () => false)) return "mine"
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0)
      if (age > 120_000) await rm(lock, { recursive: true, force: true })
      return undefined
    },
    300_000,
    undefined,
    250
  )
  if (turn === "built") return seed
  const staging = `${seed}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`
  try {
    if (await exists(ready)) return seed
    const target = join(staging, basename(wheel, ".whl"))
    const env = pythonEnv()
    await exec(interpreter.path, ["-m", "zipfile", "-e", wheel, target], { env })
    // What pip's first run would compile, and the rest of it: all of pip, on every core.
    await exec(interpreter.path, ["-m", "compileall", "-q", "-j", "0", target], { env, maxBuffer: 16 << 20 })
    await writeFile(join(target, COMPILED_MARKER), "")
    await rm(seed, { recursive: true, force: true })
    await rename(staging, seed)
    return seed
  } finally {
    await rm(staging, { recursive: true, force: true })
    await rm(lock, { recursive: true, force: true })
  }
}

let memo: Promise<NodePython> | undefined

/** The test run's `python3` (as SACAR_PYTHON's default finds it), resolved once per process. */
export const nodePython = (): Promise<NodePython> => (memo ??= (async () => {
  const interpreter = await Effect.runPromise(findInterpreter({ fallback: "python3" }, process.env.PATH ?? ""))
  const pipSeed = interpreter.bundledPip === undefined ? undefined : await seedPip(interpreter, interpreter.bundledPip)
  return { interpreter, path: `${dirname(interpreter.path)}:${SYSTEM_PATH}`, pipSeed }
})())

/**
 * Makes `pipCache` (a node's `$SACAR_ROOT/.sacar/pip`, or a step test's cache) hold the
 * shared pip as after a node's first release: a folder of its own with, for the seed's
 * pip, a link to the seed's unpacked and compiled copy, as the demo's nodes share one
 * (src/demo/shared-pip.ts). The node finds pip there and its compile marker, so it never
 * writes into it; another interpreter's pip it unpacks beside the link, in its own folder.
 * A link rather than a copy: a thousand hard links and a hundred folders per node cost
 * the test process about 0.1 CPU-s of system time, for every reconciler a test starts.
 * A cache already there is kept.
 */
export const seedPipCache = (python: NodePython, pipCache: string): void => {
  const seed = python.pipSeed
  if (seed === undefined || existsSync(pipCache)) return
  mkdirSync(pipCache, { recursive: true })
  for (const name of readdirSync(seed)) symlinkSync(join(seed, name), join(pipCache, name))
}
