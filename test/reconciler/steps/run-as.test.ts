/**
 * SACAR_RUN_AS: the app's code (venv, pip, byte-compiling, bin/prepare, bin/deploy)
 * runs as the configured user and owns what it writes, while Sacar's own files stay
 * the reconciler's and out of the app's reach. Switching users needs root; as another
 * user the tests that switch are skipped (the setting's checks still run).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { chmod, lstat, readdir, readFile } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { describe, test } from "node:test"
import { pathToFileURL } from "node:url"
import { ArtifactStore, makeArtifactStore } from "../../../src/artifacts/store.ts"
import { EXIT_USAGE, runComponent } from "../../../src/common/main.ts"
import { runProcess } from "../../../src/process/run.ts"
import { COMPILED_MARKER } from "../../../src/python/pip.ts"
import { makePython, Python } from "../../../src/python/python.ts"
import { AppUser, resolveRunAs } from "../../../src/reconciler/app-user.ts"
import type { RunAs } from "../../../src/reconciler/app-user.ts"
import { reconcilerProgram } from "../../../src/reconciler/main.ts"
import { runScript } from "../../../src/reconciler/scripts.ts"
import { releasePaths } from "../../../src/reconciler/steps/layout.ts"
import { prepareRelease } from "../../../src/reconciler/steps/pipeline.ts"
import { templateStore } from "../../../src/reconciler/steps/reuse.ts"
import { buildReleaseTarball } from "../../support/tarballs.ts"
import { input, scratch, successOf } from "./harness.ts"

const ROOT_ID = { uid: 0, gid: 0 }
const NO_SUCH_USER = "sacar-no-such-user"

describe("SACAR_RUN_AS, the setting", () => {
  test("a user name, a uid, and a uid with a gid resolve from the user database", () => {
    const nobody = resolveRunAs("nobody", ROOT_ID)
    assert.equal(nobody.name, "nobody")
    assert.ok(nobody.uid > 0)
    assert.deepEqual(resolveRunAs(String(nobody.uid), ROOT_ID), nobody)
    assert.deepEqual(resolveRunAs(`${nobody.uid}:0`, ROOT_ID), { ...nobody, gid: 0 })
  })

  test("an unknown user, a malformed value, or another user without root is refused, naming the variable", () => {
    assert.throws(() => resolveRunAs(NO_SUCH_USER, ROOT_ID), {
      variable: "SACAR_RUN_AS",
      message: /^SACAR_RUN_AS: no user "sacar-no-such-user" on this machine/
    })
    assert.throws(() => resolveRunAs("app:staff", ROOT_ID), { variable: "SACAR_RUN_AS", message: /user name or uid/ })
    assert.throws(() => resolveRunAs("nobody", { uid: 1000, gid: 1000 }), {
      variable: "SACAR_RUN_AS",
      message: /needs the reconciler to run as root; it runs as uid 1000/
    })
  })

  test("the reconciler refuses to start with an unknown user: exit 2 and one line", async (t) => {
    const written: Array<string> = []
    t.mock.method(process.stderr, "write", (chunk: string) => {
      written.push(chunk)
      return true
    })
    const code = await runComponent(
      reconcilerProgram({ SACAR_RUN_AS: NO_SUCH_USER, SACAR_NODE: "web-1", CONSUL_HTTP_ADDR: "http://127.0.0.1:1" })
    )
    t.mock.restoreAll()
    assert.equal(code, EXIT_USAGE)
    assert.equal(written.length, 1)
    assert.match(written[0]!, /^sacar: SACAR_RUN_AS: no user "sacar-no-such-user" on this machine.*\n$/)
  })
})

/** Debian's own Python keeps its pip wheel outside ensurepip; the stand-in Python hands that one out. */
const DEBIAN_PIP_WHEELS = "/usr/share/python-wheels"
const PYTHON = "/usr/bin/python3"

/** Why the switching tests cannot run here, or undefined. */
const cannotSwitch = (): string | undefined => {
  if (process.getuid?.() !== 0) return "switching users needs root"
  if (!existsSync(PYTHON)) return `${PYTHON} is missing (the app's user needs a Python outside root's home)`
  try {
    execFileSync("getent", ["passwd", "nobody"])
  } catch {
    return "there is no user nobody"
  }
  return undefined
}
const skip = cannotSwitch()

/** The pip wheel of PYTHON: ensurepip's, else Debian's. */
const pipWheel = (): string | undefined => {
  const bundled = execFileSync(PYTHON, [
    "-c",
    "import glob, os, ensurepip; print(*glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl')))"
  ], { encoding: "utf8" }).trim()
  if (bundled !== "") return bundled.split(" ").at(-1)
  const debian = existsSync(DEBIAN_PIP_WHEELS)
    ? readdirSync(DEBIAN_PIP_WHEELS).filter((f) => /^pip-.*\.whl$/.test(f))
    : []
  return debian.length === 0 ? undefined : join(DEBIAN_PIP_WHEELS, debian.at(-1)!)
}

/** Every path under `dir` (itself included) whose owner is not `uid`. */
const ownedByOthers = async (dir: string, uid: number): Promise<Array<string>> => {
  const paths = [dir, ...(await readdir(dir, { recursive: true })).map((p) => join(dir, p))]
  const owners = await Promise.all(paths.map(async (p) => [p, (await lstat(p)).uid] as const))
  return owners.filter(([, owner]) => owner !== uid).map(([p]) => p)
}

const GREETING = { name: "greeting", version: "1.0.0", modules: { "greeting/__init__.py": "HELLO = 'hi'\n" } }
const EXTRA = { name: "extra", version: "1.0.0", modules: { "extra/__init__.py": "EXTRA = 1\n" } }

describe("SACAR_RUN_AS, the app's code as that user", { skip }, () => {
  const user = skip === undefined ? resolveRunAs("nobody", ROOT_ID) : ({} as RunAs)
  const wheel = skip === undefined ? pipWheel() : undefined
  const real = makePython("/usr/bin:/bin")
  const python = Layer.succeed(
    Python,
    Python.of({
      ...real,
      resolve: (request) =>
        real.resolve({ ...request, fallback: PYTHON }).pipe(
          Effect.map((found) => ({ ...found, bundledPip: found.bundledPip ?? wheel }))
        )
    })
  )
  const services = Layer.mergeAll(Layer.succeed(ArtifactStore, makeArtifactStore({})), python)

  const prepareAs = (root: string, url: string, sha: string) =>
    Effect.runPromiseExit(
      prepareRelease(input(root, url, { sha }), () => Effect.void).pipe(
        Effect.provideService(AppUser, user),
        Effect.provide(services)
      )
    )

  test("venv, pip, bin/prepare and bin/deploy run as the user, who owns the release; Sacar's files stay root's", async (t) => {
    assert.ok(wheel, `${PYTHON} has no pip wheel (ensurepip's or ${DEBIAN_PIP_WHEELS})`)
    const root = await scratch(t, "sacar-run-as-")
    // mkdtemp's folders are root's alone; SACAR_ROOT must be reachable.
    await chmod(root, 0o755)
    const tarball = await buildReleaseTarball(join(root, "artifact.tgz"), {
      wheels: [GREETING, EXTRA],
      requirements: ["greeting==1.0.0"],
      // bin/prepare installs one more package into its venv with a pip of its own (the
      // wheel, run as it is), as an app may.
      prepare: [
        "#!/bin/sh",
        "set -e",
        "id -u > prepared-by",
        "echo \"$HOME $USER\" > prepare-env",
        `python -I ${wheel}/pip install -q --no-index --find-links wheels extra`,
        "if touch .sacar/planted 2>/dev/null; then echo yes; else echo no; fi > could-write-sacar"
      ].join("\n") + "\n",
      files: {
        "bin/deploy": {
          content: [
            "#!/bin/sh",
            "id -u > deployed-by",
            "if touch \"$SACAR_RELEASE_DIR/../../planted\" 2>/dev/null; then echo yes; else echo no; fi > could-write-app-dir"
          ].join("\n") + "\n",
          mode: 0o755
        }
      }
    })
    const url = pathToFileURL(tarball.path).href
    const first = "1".repeat(40)
    successOf(await prepareAs(root, url, first))
    const paths = releasePaths(root, "shop", first)
    const read = (name: string) => readFile(join(paths.dir, name), "utf8").then((s) => s.trim())

    assert.equal(await read("prepared-by"), String(user.uid))
    assert.equal(await read("prepare-env"), `${user.home} ${user.name}`)
    assert.equal(await read("could-write-sacar"), "no", "the app cannot write Sacar's markers and lock")
    // Sacar's install (greeting) and bin/prepare's pip (extra) both installed into the user's venv.
    execFileSync(join(paths.venv, "bin", "python"), ["-c", "import greeting, extra"], { uid: user.uid, gid: user.gid })
    assert.deepEqual(
      (await ownedByOthers(paths.dir, user.uid)).filter((p) => !p.startsWith(paths.meta)),
      [],
      "the release and its venv are the user's"
    )
    assert.deepEqual(await ownedByOthers(paths.meta, 0), [], "markers and the lock are root's")
    assert.deepEqual(await ownedByOthers(join(root, ".sacar"), 0), [], "the shared pip and the templates are root's")
    assert.ok((await readdir(templateStore(root))).length > 0, "the installed venv was kept for reuse")

    // Same dependencies: the venv is a copy of the template, and still the user's.
    const second = "2".repeat(40)
    const reused = successOf(await prepareAs(root, url, second))
    assert.ok(reused.steps.install?.reusedFrom === first || reused.steps.venv?.reusedFrom === first)
    const again = releasePaths(root, "shop", second)
    assert.deepEqual(await ownedByOthers(again.venv, user.uid), [], "the copied venv is the user's")

    const ran = await Effect.runPromise(
      runScript(
        "deploy",
        { app: "shop", sha: first, node: "web-1", releaseDir: paths.dir, venv: paths.venv, previousReleaseDir: "" },
        30_000,
        join(root, "shop", ".deploy.pid")
      ).pipe(Effect.provideService(AppUser, user))
    )
    assert.equal(ran.ran, true)
    assert.equal(await read("deployed-by"), String(user.uid))
    assert.equal(await read("could-write-app-dir"), "no", "the app cannot switch current or write the pid files")
  })

  test("a node's first release: the reconciler unpacks the shared pip compiled, all of it, before the user's pip runs, which never writes into it", async (t) => {
    assert.ok(wheel, `${PYTHON} has no pip wheel (ensurepip's or ${DEBIAN_PIP_WHEELS})`)
    const root = await scratch(t, "sacar-run-as-fresh-")
    await chmod(root, 0o755)
    const pipCache = join(root, ".sacar", "pip")
    const tarball = await buildReleaseTarball(join(root, "artifact.tgz"), {
      // Two versions and a range: pip chooses, so pip installs (wheel-installer.ts).
      wheels: [GREETING, { ...GREETING, version: "1.1.0" }],
      requirements: ["greeting>=1.0"]
    })
    const bytecode = async () =>
      (await readdir(pipCache, { recursive: true }).catch(() => [] as Array<string>)).filter((p) => p.endsWith(".pyc"))
    let afterVenv: Array<string> | undefined
    const exit = await Effect.runPromiseExit(
      prepareRelease(
        input(root, pathToFileURL(tarball.path).href, { sha: "3".repeat(40), pipCache }),
        (step, event) =>
          step === "venv" && event._tag === "Finished"
            ? Effect.promise(async () => void (afterVenv = await bytecode()))
            : Effect.void
      ).pipe(Effect.provideService(AppUser, user), Effect.provide(services))
    )
    const paths = releasePaths(root, "shop", "3".repeat(40))
    successOf(exit)
    assert.ok(afterVenv !== undefined && afterVenv.length > 100, "the venv step unpacked pip with its bytecode")
    execFileSync(join(paths.venv, "bin", "python"), ["-c", "import greeting"], { uid: user.uid, gid: user.gid })
    const unpacked = join(pipCache, basename(wheel ?? "", ".whl"))
    const sources = (await readdir(unpacked, { recursive: true })).filter((p) => p.endsWith(".py"))
    // Compiled by the time the venv step ended, before the user's pip ran: nothing was left for pip.
    const compiled = new Set(afterVenv)
    assert.deepEqual(new Set(await bytecode()), compiled, "pip wrote no bytecode of its own")
    const missing = sources.filter((source) => {
      const name = basename(source, ".py")
      const cache = join(dirname(source), "__pycache__")
      return ![...compiled].some((p) =>
        dirname(p) === join(basename(unpacked), cache) && basename(p).startsWith(`${name}.`)
      )
    })
    assert.ok(sources.length > 100)
    assert.deepEqual(missing, [], "every module of the shared pip has its bytecode")
    assert.ok(existsSync(join(unpacked, COMPILED_MARKER)))
    assert.deepEqual(await ownedByOthers(pipCache, 0), [], "the shared pip is root's, bytecode included")
  })

  test("a timed-out command of the user's is killed with everything it started", async () => {
    let group = 0
    const exit = await Effect.runPromiseExit(runProcess({
      command: "/bin/sh",
      args: ["-c", "id -u; sleep 60 & sleep 60"],
      env: { PATH: "/usr/bin:/bin" },
      user,
      timeoutMs: 500,
      killGraceMs: 200,
      onSpawn: (pid) => void (group = pid)
    }))
    assert.ok(Exit.isFailure(exit))
    const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
    assert.ok(failure?._tag === "Fail" && failure.error._tag === "ProcessTimedOut")
    assert.equal(failure.error.tail.trim(), String(user.uid))
    assert.ok(group > 0)
    // Killed processes the sandbox's init has not reaped yet are zombies: gone all the same.
    const left = execFileSync("ps", ["-eo", "pgid=,stat="], { encoding: "utf8" }).split("\n")
      .map((line) => line.trim().split(/\s+/))
      .filter(([pgid, stat]) => Number(pgid) === group && !stat?.startsWith("Z"))
    assert.deepEqual(left, [], "the background sleep went with its group")
  })
})
