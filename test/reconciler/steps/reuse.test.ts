/**
 * A release whose dependencies did not change gets a copy of what an earlier release's
 * pip installed on the node: it must equal a fresh install, name its own venv, and
 * stay independent of the release it came from.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import assert from "node:assert/strict"
import { execFile, spawn } from "node:child_process"
import { access, appendFile, chmod, readdir, readFile, rm, stat } from "node:fs/promises"
import { join, relative } from "node:path"
import { createInterface } from "node:readline"
import { describe, test } from "node:test"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { ArtifactStore, makeArtifactStore } from "../../../src/artifacts/store.ts"
import { makePython, Python } from "../../../src/python/python.ts"
import { LaterWork } from "../../../src/reconciler/steps/later.ts"
import type { LaterWorkSet } from "../../../src/reconciler/steps/later.ts"
import { prepareRelease } from "../../../src/reconciler/steps/pipeline.ts"
import type { PreparedRelease, PrepareReleaseInput } from "../../../src/reconciler/steps/pipeline.ts"
import { findTemplate, saveTemplate, templateStore } from "../../../src/reconciler/steps/reuse.ts"
import { eventually } from "../../support/eventually.ts"
import { buildReleaseTarball, smallWheels } from "../../support/tarballs.ts"
import type { WheelSpec } from "../../support/wheels.ts"
import { checkedRecord, input, PIP_CACHE, run, scratch, Services, successOf } from "./harness.ts"

const exec = promisify(execFile)
const CHILD = fileURLToPath(new URL("../../support/prepare-child.ts", import.meta.url))

const shaOf = (n: number) => n.toString(16).padStart(40, "a")

// A package with a console script, so the rewritten entry points are exercised.
const withScript: WheelSpec = {
  name: "hello-cli",
  version: "2.0.0",
  modules: {
    "hello_cli/__init__.py":
      "import sys, os\ndef main():\n    print(sys.prefix)\n    print(os.environ.get('VIRTUAL_ENV', ''))\n",
    "hello_cli-2.0.0.dist-info/entry_points.txt": "[console_scripts]\nhello = hello_cli:main\n"
  }
}
const WHEELS = [...smallWheels(8), withScript]
const IMPORT_ALL = `import hello_cli, ${smallWheels(8).map((w) => w.name).join(", ")}`

const release = (root: string, sha: string) => join(root, "shop", "releases", sha)

const prepareFrom = async (
  root: string,
  tarball: { path: string },
  sha: string,
  extra: Partial<PrepareReleaseInput> = {}
) => successOf((await run(input(root, pathToFileURL(tarball.path).href, { sha, ...extra }))).exit)

/** `pip list` of a venv, with the node's shared pip (the venvs have none of their own). */
const pipList = async (venv: string) => {
  const [pip] = await readdir(PIP_CACHE)
  const { stdout } = await exec(join(venv, "bin", "python"), [join(PIP_CACHE, pip!, "pip"), "list", "--format=json"], {
    env: { PATH: "/usr/bin:/bin", PIP_DISABLE_PIP_VERSION_CHECK: "1" }
  })
  return JSON.parse(stdout) as Array<{ name: string; version: string }>
}

/** Every file under `venv` (bytecode aside), its content with the venv's own path written as `<venv>`. */
const venvFiles = async (venv: string) => {
  const files = new Map<string, string>()
  for (const entry of await readdir(venv, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    if (!entry.isFile() || path.endsWith(".pyc")) continue
    const text = await readFile(path, "utf8")
    files.set(
      relative(venv, path),
      (entry.name === "RECORD" ? await checkedRecord(path, text) : text).replaceAll(venv, "<venv>")
    )
  }
  return files
}

const bytecode = async (venv: string) =>
  (await readdir(venv, { recursive: true })).filter((p) => p.endsWith(".pyc")).sort()

/** How a venv behaves, for comparing with `worksAsItself`: imports, console script, shebang, activate. */
const howItRuns = async (venv: string) => {
  const imports = await exec(join(venv, "bin", "python"), ["-c", IMPORT_ALL]).then(() => "every package", String)
  const { stdout } = await exec(join(venv, "bin", "hello"), [], { env: { PATH: "/usr/bin:/bin" } })
  const activate = await readFile(join(venv, "bin", "activate"), "utf8")
  return {
    imports,
    consoleScriptRunsIn: stdout.split("\n")[0],
    shebang: (await readFile(join(venv, "bin", "hello"), "utf8")).split("\n")[0],
    activateNames: new RegExp(`VIRTUAL_ENV=["']?${venv}["']?\\n`).test(activate) ? venv : activate
  }
}

/** A venv that works and names itself everywhere, never the release it was copied from. */
const worksAsItself = (venv: string) => ({
  imports: "every package",
  consoleScriptRunsIn: venv,
  shebang: `#!${join(venv, "bin", "python")}`,
  activateNames: venv
})

describe("reused dependencies", { concurrency: true }, () => {
  test("a second release with the same dependencies copies the first's: it imports every package, its console scripts name its own venv, pip list and files match a fresh install", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: WHEELS, files: { "app.py": "V = 1\n" } })
    const two = await buildReleaseTarball(join(dir, "two.tgz"), { wheels: WHEELS, files: { "app.py": "V = 2\n" } })
    const first = await prepareFrom(root, one, shaOf(1))
    assert.equal(first.steps.install?.reusedFrom, undefined)
    const second = await prepareFrom(root, two, shaOf(2))
    assert.equal(second.steps.install?.reusedFrom, shaOf(1))
    const venv = join(release(root, shaOf(2)), ".venv")
    assert.deepEqual(await howItRuns(venv), worksAsItself(venv))
    assert.doesNotMatch(await readFile(join(venv, "pyvenv.cfg"), "utf8"), new RegExp(shaOf(1)))

    // The same release installed by pip on a node that never saw the first.
    const freshRoot = join(dir, "fresh")
    const fresh = await prepareFrom(freshRoot, two, shaOf(2))
    assert.equal(fresh.steps.install?.reusedFrom, undefined)
    const freshVenv = join(release(freshRoot, shaOf(2)), ".venv")
    assert.deepEqual(await pipList(venv), await pipList(freshVenv))
    const [reusedFiles, freshFiles] = [await venvFiles(venv), await venvFiles(freshVenv)]
    assert.deepEqual([...reusedFiles.keys()].sort(), [...freshFiles.keys()].sort())
    for (const [path, content] of freshFiles) assert.equal(reusedFiles.get(path), content, path)
    assert.deepEqual(await bytecode(venv), await bytecode(freshVenv))
    // No file of the copy names the release it was copied from, bytecode included.
    const { stdout } = await exec("grep", ["-rl", release(root, shaOf(1)), venv]).catch((e: { stdout: string }) => e)
    assert.equal(stdout, "")
  })

  test("bin/prepare writing into one release's venv leaves the other untouched; removing the older release leaves the newer working", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    // Appends to an installed file in place (a hard link would carry this to every copy) and adds a package.
    const scribble = `#!/bin/sh
set -e
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo 'VALUE = 99' >> "$site/pkg0/__init__.py"
chmod 600 "$site/pkg1/__init__.py"
mkdir "$site/extra" && echo 'X = 1' > "$site/extra/__init__.py"
`
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: WHEELS })
    const two = await buildReleaseTarball(join(dir, "two.tgz"), { wheels: WHEELS, prepare: scribble })
    const three = await buildReleaseTarball(join(dir, "three.tgz"), { wheels: WHEELS, files: { "app.py": "\n" } })
    await prepareFrom(root, one, shaOf(1))
    const second = await prepareFrom(root, two, shaOf(2))
    assert.equal(second.steps.install?.reusedFrom, shaOf(1))
    const check =
      "import pkg0, os, importlib.util; print(pkg0.VALUE, oct(os.stat(pkg0.__file__.replace('pkg0', 'pkg1')).st_mode & 0o777), importlib.util.find_spec('extra') is not None)"
    const valueIn = async (sha: string) =>
      (await exec(join(release(root, sha), ".venv", "bin", "python"), ["-c", check])).stdout.trim()
    assert.equal(await valueIn(shaOf(2)), "99 0o600 True")
    assert.equal(await valueIn(shaOf(1)), "0 0o644 False")
    // A third release copies what pip installed, not what release two's bin/prepare made of it.
    const third = await prepareFrom(root, three, shaOf(3))
    assert.equal(third.steps.install?.reusedFrom, shaOf(1))
    assert.equal(await valueIn(shaOf(3)), "0 0o644 False")

    // Retention removes the first release: the others keep working, and so does reuse.
    await rm(release(root, shaOf(1)), { recursive: true, force: true })
    assert.deepEqual(
      await howItRuns(join(release(root, shaOf(2)), ".venv")),
      worksAsItself(join(release(root, shaOf(2)), ".venv"))
    )
    assert.deepEqual(
      await howItRuns(join(release(root, shaOf(3)), ".venv")),
      worksAsItself(join(release(root, shaOf(3)), ".venv"))
    )
    await rm(release(root, shaOf(3)), { recursive: true, force: true })
    assert.deepEqual(
      await howItRuns(join(release(root, shaOf(2)), ".venv")),
      worksAsItself(join(release(root, shaOf(2)), ".venv"))
    )
  })

  test("what bin/prepare of the release a template comes from writes into its venv never reaches the next release; a package it adds does not stop the reuse", async (t) => {
    const dir = await scratch(t)
    const site = "site=$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')"
    const inPlace = `#!/bin/sh\nset -e\n${site}\necho 'VALUE = 99' >> "$site/pkg0/__init__.py"\n`
    const adds = `#!/bin/sh\nset -e\n${site}\nmkdir "$site/extra" && echo 'X = 1' > "$site/extra/__init__.py"\n`
    const check = "import pkg0, importlib.util; print(pkg0.VALUE, importlib.util.find_spec('extra') is not None)"
    const valueIn = async (root: string, sha: string) =>
      (await exec(join(release(root, sha), ".venv", "bin", "python"), ["-c", check])).stdout.trim()
    const next = await buildReleaseTarball(join(dir, "next.tgz"), { wheels: WHEELS, files: { "app.py": "\n" } })
    for (const [name, prepare] of [["in-place", inPlace], ["adds", adds]] as const) {
      const root = join(dir, name)
      const first = await buildReleaseTarball(join(dir, `${name}.tgz`), { wheels: WHEELS, prepare })
      await prepareFrom(root, first, shaOf(1))
      assert.equal(await valueIn(root, shaOf(1)), name === "in-place" ? "99 False" : "0 True")
      const second = await prepareFrom(root, next, shaOf(2))
      // In place, the template is kept only if its copy was whole before the write (the
      // copy runs beside bin/prepare); either way the next release gets pip's files.
      if (name === "adds") assert.equal(second.steps.install?.reusedFrom, shaOf(1))
      assert.equal(await valueIn(root, shaOf(2)), "0 False", `${name}: what pip installed, nothing of bin/prepare's`)
    }
  })

  test("a venv file written in place or chmodded after the links were taken keeps the template from being kept; untouched, it is kept", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: WHEELS })
    await prepareFrom(root, one, shaOf(1))
    const venv = join(release(root, shaOf(1)), ".venv")
    const { stdout } = await exec(join(venv, "bin", "python"), [
      "-c",
      "import pkg0, pkg1; print(pkg0.__file__); print(pkg1.__file__)"
    ])
    const [pkg0, pkg1] = stdout.trim().split("\n") as [string, string]
    const cases: ReadonlyArray<readonly [string, () => Promise<void>, boolean]> = [
      ["untouched", async () => {}, true],
      ["written in place", () => appendFile(pkg0, "VALUE = 99\n"), false],
      ["chmodded", () => chmod(pkg1, 0o600), false]
    ]
    for (const [name, change, kept] of cases) {
      const store = join(dir, `store-${name.replaceAll(" ", "-")}`)
      const digest = "f".repeat(64)
      const finish = await Effect.runPromise(
        saveTemplate({ store, root, digest, venv, from: { app: "shop", sha: shaOf(1) } })
      )
      await change()
      await Effect.runPromise(finish)
      const template = await Effect.runPromise(findTemplate(store, digest))
      assert.equal(template !== undefined, kept, name)
      assert.deepEqual((await readdir(store)).filter((n) => n.endsWith(".tmp")), [], `${name}: no staging left`)
      if (template !== undefined) {
        assert.equal(await readFile(join(template.venv, relative(venv, pkg0)), "utf8"), "VALUE = 0\n")
      }
    }
  })

  test("on a node, keeping the template is left for later: the next release reuses it once done, and a node stopped meanwhile leaves no staging behind", async (t) => {
    const dir = await scratch(t)
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: WHEELS })
    const two = await buildReleaseTarball(join(dir, "two.tgz"), { wheels: WHEELS, files: { "app.py": "\n" } })
    const onNode = async (root: string, tarball: { path: string }, sha: string, later: LaterWorkSet) =>
      Effect.runPromise(
        prepareRelease(input(root, pathToFileURL(tarball.path).href, { sha }), () => Effect.void).pipe(
          Effect.provide(Services),
          Effect.provideService(LaterWork, later)
        )
      )
    const node = Effect.runSync(Scope.make())
    const later = Effect.runSync(Scope.provide(node)(FiberSet.make<void, never>()))
    const root = join(dir, "root")
    await onNode(root, one, shaOf(1), later)
    await Effect.runPromise(FiberSet.awaitEmpty(later))
    const second = await onNode(root, two, shaOf(2), later)
    assert.equal(second.steps.install?.reusedFrom, shaOf(1))
    await Effect.runPromise(Scope.close(node, Exit.void))

    // Stopped right after a first release was ready: the copy it left is ended and cleaned up.
    const stopped = Effect.runSync(Scope.make())
    const cut = join(dir, "cut")
    await onNode(cut, one, shaOf(1), Effect.runSync(Scope.provide(stopped)(FiberSet.make<void, never>())))
    await Effect.runPromise(Scope.close(stopped, Exit.void))
    const store = await readdir(templateStore(cut)).catch(() => [] as Array<string>)
    assert.deepEqual(store.filter((name) => name.endsWith(".tmp")), [])
    const [digest] = store.filter((name) => /^[0-9a-f]{64}$/.test(name))
    if (digest !== undefined) {
      const kept = await readdir(join(templateStore(cut), digest))
      assert.deepEqual(kept.filter((name) => name.endsWith(".tmp")), [], "no half-made spare")
    }
  })

  test("a release takes the spare copy made beside the previous one's bin/prepare by a rename, and leaves a new one for the next", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: WHEELS })
    const two = await buildReleaseTarball(join(dir, "two.tgz"), { wheels: WHEELS, files: { "app.py": "\n" } })
    await prepareFrom(root, one, shaOf(1))
    const store = templateStore(root)
    const [digest] = (await readdir(store)).filter((name) => /^[0-9a-f]{64}$/.test(name))
    const spare = join(store, digest!, "spare")
    const template = join(store, digest!, "venv")
    const before = await stat(spare)
    const templateFiles = await venvFiles(template)
    assert.deepEqual(await venvFiles(spare), templateFiles, "the spare is a whole copy of the template")

    const second = await prepareFrom(root, two, shaOf(2))
    assert.equal(second.steps.install?.reusedFrom, shaOf(1))
    const venv = join(release(root, shaOf(2)), ".venv")
    assert.equal((await stat(venv)).ino, before.ino, "the second release's venv is the spare, renamed")
    assert.deepEqual(await howItRuns(venv), worksAsItself(venv))
    assert.notEqual((await stat(spare)).ino, before.ino, "a new spare waits for the next release")
    assert.deepEqual(await venvFiles(spare), templateFiles)
    assert.deepEqual(await venvFiles(template), templateFiles, "the template is unchanged")
  })

  test("a changed wheel under the same file name is not reused", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const changed = WHEELS.map((w) =>
      w.name === "pkg0" ? { ...w, modules: { ...w.modules, "pkg0/__init__.py": "VALUE = 1000\n" } } : w
    )
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: WHEELS })
    const two = await buildReleaseTarball(join(dir, "two.tgz"), { wheels: changed })
    await prepareFrom(root, one, shaOf(1))
    const second = await prepareFrom(root, two, shaOf(2))
    assert.equal(second.steps.install?.reusedFrom, undefined)
    const { stdout } = await exec(join(release(root, shaOf(2)), ".venv", "bin", "python"), [
      "-c",
      "import pkg0; print(pkg0.VALUE)"
    ])
    assert.equal(stdout.trim(), "1000")
  })

  test("a different python-version is not reused", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    // Another interpreter than the default: on PATH, or in pyenv's versions.
    const pyenv = join(process.env.PYENV_ROOT ?? join(process.env.HOME ?? "/root", ".pyenv"), "versions")
    const extra = await readdir(pyenv).then((vs) => vs.map((v) => join(pyenv, v, "bin")), () => [] as Array<string>)
    const searchPath = [process.env.PATH ?? "", ...extra].join(":")
    const python = makePython(searchPath)
    const base = await Effect.runPromise(python.resolve({ fallback: "python3" }))
    const others = ["3.14", "3.13", "3.12", "3.11", "3.10", "3.9"].filter((v) => v !== base.minor)
    const other = (await Promise.all(others.map((v) =>
      Effect.runPromise(Effect.result(python.resolve({ version: v, fallback: "python3" })))
    )))
      .flatMap((r) =>
        r._tag === "Success" && r.success.bundledPip !== undefined ? [r.success] : []
      )[0]
    if (other === undefined) return t.skip(`no second Python besides ${base.version} on this machine`)
    const services = Layer.mergeAll(Layer.succeed(ArtifactStore, makeArtifactStore()), Layer.succeed(Python, python))
    const prepare = async (tarball: { path: string }, sha: string) =>
      Effect.runPromise(
        prepareRelease(input(root, pathToFileURL(tarball.path).href, { sha }), () => Effect.void).pipe(
          Effect.provide(services)
        )
      )
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: WHEELS, pythonVersion: base.minor })
    const two = await buildReleaseTarball(join(dir, "two.tgz"), { wheels: WHEELS, pythonVersion: other.minor })
    await prepare(one, shaOf(1))
    const second: PreparedRelease = await prepare(two, shaOf(2))
    assert.equal(second.steps.install?.reusedFrom, undefined)
    assert.equal(second.python.version, other.version)
    const { stdout } = await exec(join(release(root, shaOf(2)), ".venv", "bin", "python"), [
      "-c",
      `${IMPORT_ALL}; import sys; print(sys.version.split()[0])`
    ])
    assert.equal(stdout.trim(), other.version)
  })

  test("kill -9 while the template is being copied, then again: a correct venv", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    // Enough files that the copy takes a while.
    const many: WheelSpec = {
      name: "bulk",
      version: "1.0.0",
      modules: Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`bulk/m${i}.py`, `X = ${i}\n`]))
    }
    const one = await buildReleaseTarball(join(dir, "one.tgz"), { wheels: [...WHEELS, many] })
    const two = await buildReleaseTarball(join(dir, "two.tgz"), {
      wheels: [...WHEELS, many],
      files: { "app.py": "\n" }
    })
    await prepareFrom(root, one, shaOf(1))
    const target = release(root, shaOf(2))
    const prepare = input(root, pathToFileURL(two.path).href, { sha: shaOf(2) })
    const child = spawn(process.execPath, [CHILD, JSON.stringify(prepare)], { stdio: ["ignore", "pipe", "inherit"] })
    t.after(() => void child.kill("SIGKILL"))
    const exited = new Promise((resolve) => child.on("exit", resolve))
    const lines = createInterface({ input: child.stdout })
    await new Promise<void>((resolve) => lines.on("line", (l) => l.includes(`"venv","event":"Started"`) && resolve()))
    // Kill once the copy has begun: the venv directory exists, its marker does not.
    const exists = (p: string) => access(p).then(() => true, () => false)
    await eventually("the venv copy to begin", () => exists(join(target, ".venv", "lib")), 60_000, undefined, 2)
    child.kill("SIGKILL")
    await exited
    assert.equal(await exists(join(target, ".sacar", "venv")), false, "the copy finished before the kill")

    const again = await prepareFrom(root, two, shaOf(2))
    assert.equal(again.steps.install?.reusedFrom, shaOf(1))
    const venv = join(target, ".venv")
    assert.deepEqual(await howItRuns(venv), worksAsItself(venv))
    await exec(join(venv, "bin", "python"), ["-c", "import bulk.m1499"])
    const [copied, original] = [await venvFiles(venv), await venvFiles(join(release(root, shaOf(1)), ".venv"))]
    assert.deepEqual([...copied.keys()].sort(), [...original.keys()].sort())
  })
})
