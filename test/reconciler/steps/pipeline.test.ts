import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { access, readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, test } from "node:test"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { prepareRelease } from "../../../src/reconciler/steps/pipeline.ts"
import { eventually } from "../../support/eventually.ts"
import { buildReleaseTarball, smallWheels } from "../../support/tarballs.ts"
import { failureOf, hasEnded, input, run, scratch, Services, SHA, successOf } from "./harness.ts"

const exec = promisify(execFile)

// Sacar's own secrets and Python/pip settings: none may reach pip or bin/prepare.
process.env.CONSUL_HTTP_TOKEN = "consul-secret"
process.env.GITHUB_TOKEN = "github-secret"
process.env.PYTHONPATH = "/nonexistent-pythonpath"
process.env.PIP_INDEX_URL = "http://127.0.0.1:9/simple"
process.env.PIP_FIND_LINKS = "/nonexistent"

describe("prepareRelease", { concurrency: true }, () => {
  const PRINT_ENV = `#!/bin/sh
env > "$SACAR_RELEASE_DIR/prepare-env.txt"
pwd > "$SACAR_RELEASE_DIR/prepare-cwd.txt"
python -c 'import pkg0, pkg1; print(pkg0.VALUE + pkg1.VALUE)' > "$SACAR_RELEASE_DIR/prepare-import.txt"
echo prepared
`

  test("a release from a file:// tarball ends ready, with a working venv and bin/prepare run in the contract's environment", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const tarball = await buildReleaseTarball(join(dir, "src", "app.tgz"), {
      wheels: smallWheels(3),
      prepare: PRINT_ENV,
      pythonVersion: "3.11",
      files: { "app/main.py": "print('hi')\n" }
    })
    const first = await run(
      input(root, pathToFileURL(tarball.path).href, {
        artifact: { url: pathToFileURL(tarball.path).href, sha256: tarball.sha256 }
      })
    )
    const ready = successOf(first.exit)
    const release = join(root, "shop", "releases", SHA)
    assert.equal(ready.dir, release)
    assert.equal(ready.alreadyReady, false)
    assert.match(ready.python.version, /^3\.11\./)
    assert.match(ready.message, /^prepared in \d+\.\ds$/)
    assert.deepEqual(Object.keys(ready.steps), ["download", "extract", "lock", "venv", "install", "prepare"])
    assert.deepEqual(first.events.map(([step, tag]) => `${step}:${tag}`), [
      "download:Started",
      "download:Finished",
      "extract:Started",
      "extract:Finished",
      "lock:Started",
      "lock:Finished",
      "venv:Started",
      "venv:Finished",
      "install:Started",
      "install:Finished",
      "prepare:Started",
      "prepare:Finished"
    ])

    const { stdout } = await exec(join(release, ".venv", "bin", "python"), [
      "-c",
      "import pkg0, pkg1, pkg2; print(pkg2.VALUE, pkg1.util.double(4) if hasattr(pkg1, 'util') else __import__('pkg1.util').util.double(4))"
    ])
    assert.equal(stdout.trim(), "2 8")
    assert.equal((await readFile(join(release, "prepare-import.txt"), "utf8")).trim(), "1")
    assert.equal((await readFile(join(release, "prepare-cwd.txt"), "utf8")).trim(), release)
    const env = Object.fromEntries(
      (await readFile(join(release, "prepare-env.txt"), "utf8")).trim().split("\n").map((line) => {
        const at = line.indexOf("=")
        return [line.slice(0, at), line.slice(at + 1)]
      })
    )
    assert.equal(env.COMMIT_SHA, SHA)
    assert.equal(env.SACAR_APP, "shop")
    assert.equal(env.SACAR_NODE, "web-1")
    assert.equal(env.SACAR_RELEASE_DIR, release)
    assert.equal(env.VIRTUAL_ENV, join(release, ".venv"))
    assert.ok(env.PATH?.startsWith(`${join(release, ".venv", "bin")}:`), env.PATH)
    for (const leaked of Object.keys(env)) {
      assert.ok(
        !/^(CONSUL_|GITHUB_|PYTHON|PIP_|SACAR_ROOT|SACAR_PYTHON)/.test(leaked) || leaked === "SACAR_APP" ||
          leaked === "SACAR_NODE" || leaked === "SACAR_RELEASE_DIR",
        `${leaked} leaked into bin/prepare`
      )
    }
    assert.ok(!JSON.stringify(env).includes("secret"))

    // Markers and no leftovers: the tarball is gone once unpacked.
    assert.deepEqual((await readdir(join(release, ".sacar"))).sort(), [
      "installed",
      "prepared",
      "ready",
      "source",
      "venv"
    ])
    assert.deepEqual(await readdir(join(root, "shop", "releases")), [SHA])

    // Running again finds it ready and does nothing.
    await writeFile(join(release, "prepare-env.txt"), "untouched")
    const again = await run(input(root, "file:///nonexistent.tgz"))
    assert.equal(successOf(again.exit).alreadyReady, true)
    assert.deepEqual(again.events, [])
    assert.equal(await readFile(join(release, "prepare-env.txt"), "utf8"), "untouched")
  })

  test("a checksum mismatch fails the download for good", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), { wheels: [] })
    const result = await run(input(join(dir, "root"), pathToFileURL(tarball.path).href, {
      artifact: { url: pathToFileURL(tarball.path).href, sha256: "f".repeat(64) }
    }))
    const error = failureOf(result.exit)
    assert.equal(error._tag, "ArtifactUnavailable")
    assert.equal(error.step, "download")
    assert.equal(error.retryable, false)
    assert.match(error.message, /checksum mismatch/)
    assert.deepEqual(result.events.at(-1), ["download", "Failed"])
    assert.deepEqual(await readdir(join(dir, "root", "shop", "releases")), [])
  })

  test("a wheel missing from wheels/ fails the install with pip's output", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      wheels: smallWheels(1),
      requirements: ["pkg0==1.0.0", "notshipped==2.0"],
      prepare: "#!/bin/sh\ntouch prepared-ran\n"
    })
    const root = join(dir, "root")
    const error = failureOf((await run(input(root, pathToFileURL(tarball.path).href))).exit)
    assert.equal(error._tag, "CommandFailed")
    assert.equal(error.step, "install")
    assert.equal(error.retryable, false)
    assert.match(error.log, /notshipped/)
    assert.ok(error.log.length <= 4096)
    const release = join(root, "shop", "releases", SHA)
    await assert.rejects(access(join(release, "prepared-ran")))
    await assert.rejects(access(join(release, ".sacar", "ready")))
  })

  test("a failing bin/prepare fails the release with its exit code and output tail", async (t) => {
    const dir = await scratch(t)
    const noise = "x".repeat(200)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      wheels: smallWheels(1),
      prepare:
        `#!/bin/sh\nfor i in $(seq 1 100); do echo "line $i ${noise}"; done\necho "migrations table missing" >&2\nexit 3\n`
    })
    const root = join(dir, "root")
    const error = failureOf((await run(input(root, pathToFileURL(tarball.path).href))).exit)
    assert.equal(error._tag, "CommandFailed")
    assert.equal(error.step, "prepare")
    if (error._tag !== "CommandFailed") return
    assert.equal(error.exitCode, 3)
    assert.match(error.message, /exit code 3/)
    assert.match(error.log, /migrations table missing\n$/)
    assert.ok(error.log.length <= 4096 && error.log.length > 3000)
    await assert.rejects(access(join(root, "shop", "releases", SHA, ".sacar", "ready")))
    await assert.rejects(access(join(root, "shop", "releases", SHA, ".sacar", "prepared")))
  })

  test("an unknown python-version names what was looked for", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), { wheels: [], pythonVersion: "3.99" })
    const error = failureOf((await run(input(join(dir, "root"), pathToFileURL(tarball.path).href))).exit)
    assert.equal(error._tag, "PythonUnavailable")
    assert.equal(error.step, "venv")
    assert.equal(error.retryable, false)
    assert.match(error.message, /python3\.99/)
  })

  test("bin/prepare over its time is killed, with its whole process group", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      requirements: null,
      prepare: "#!/bin/sh\necho started\n(sleep 120; touch \"$SACAR_RELEASE_DIR/grandchild-survived\") &\nsleep 120\n"
    })
    const root = join(dir, "root")
    const started = Date.now()
    // The timeout covers the venv too, which takes seconds on a loaded machine.
    const error = failureOf(
      (await run(input(root, pathToFileURL(tarball.path).href, { prepareTimeoutMs: 15_000 }))).exit
    )
    assert.ok(Date.now() - started < 60_000, "killed at the timeout, long before bin/prepare's own end")
    assert.equal(error.step, "prepare")
    assert.ok(error._tag === "CommandFailed" || error._tag === "PrepareTimedOut", error._tag)
    assert.match(error.message, /within|longer than/)
    // No one left to write the file later: check the process group is gone.
    const { stdout } = await exec("ps", ["-eo", "args"])
    assert.ok(!stdout.includes(join(root, "shop")), "a process of the release is still running")
  })

  test("a bin/prepare without the executable bit runs through its #! line", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      wheels: [],
      files: {
        "bin/prepare": {
          content: "#!/usr/bin/env python\nimport sys, os\nopen('ran-with', 'w').write(sys.prefix)\n",
          mode: 0o644
        }
      }
    })
    const root = join(dir, "root")
    successOf((await run(input(root, pathToFileURL(tarball.path).href))).exit)
    const release = join(root, "shop", "releases", SHA)
    assert.equal(await readFile(join(release, "ran-with"), "utf8"), join(release, ".venv"))
  })

  test("interrupting a release in bin/prepare kills the script and releases the lock", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      requirements: null,
      prepare: "#!/bin/sh\necho $$ > script-pid\nsleep 60\n"
    })
    const root = join(dir, "root")
    const release = join(root, "shop", "releases", SHA)
    let preparing: () => void = () => undefined
    const started = new Promise<void>((resolve) => {
      preparing = resolve
    })
    const fiber = Effect.runFork(
      prepareRelease(input(root, pathToFileURL(tarball.path).href), (step, event) =>
        Effect.sync(() => {
          if (step === "prepare" && event._tag === "Started") preparing()
        })).pipe(Effect.provide(Services))
    )
    await started
    const pid = await eventually(
      "bin/prepare to write its pid",
      async () => Number(await readFile(join(release, "script-pid"), "utf8")) || undefined,
      5_000
    )
    await Effect.runPromise(Fiber.interrupt(fiber))
    await eventually(`bin/prepare (pid ${pid}) to end`, () => hasEnded(pid), 5_000)
    assert.deepEqual((await readdir(join(release, ".sacar"))).sort(), ["installed", "source", "venv"])
  })

  test("two preparers of one release at once: bin/prepare runs once, the other is told to come back", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      wheels: smallWheels(2),
      prepare: "#!/bin/sh\necho run >> prepare-runs\nsleep 1\n"
    })
    const root = join(dir, "root")
    const url = pathToFileURL(tarball.path).href
    const [a, b] = await Promise.all([run(input(root, url)), run(input(root, url))])
    const outcomes = [a, b].map((r) => r.exit._tag === "Success" ? "ready" : failureOf(r.exit)._tag).sort()
    assert.ok(
      JSON.stringify(outcomes) === JSON.stringify(["ReleaseBusy", "ready"]) ||
        JSON.stringify(outcomes) === JSON.stringify(["ready", "ready"]),
      JSON.stringify(outcomes)
    )
    assert.equal(await readFile(join(root, "shop", "releases", SHA, "prepare-runs"), "utf8"), "run\n")
    const again = await run(input(root, url))
    assert.equal(successOf(again.exit).alreadyReady, true)
  })
})
