/**
 * kill -9 at each stage, then run again: the release must still end ready, with a
 * working venv and no leftovers.
 */
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { execFile, spawn } from "node:child_process"
import { readdir, readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { describe, test } from "node:test"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { planInstall } from "../../../src/python/wheel-installer.ts"
import type { PrepareReleaseInput } from "../../../src/reconciler/steps/pipeline.ts"
import { eventually, sleep } from "../../support/eventually.ts"
import { startFakeGcs } from "../../support/gcs.ts"
import { nodePython } from "../../support/node-python.ts"
import { buildReleaseTarball, smallWheels } from "../../support/tarballs.ts"
import { hasEnded, input, scratch, SHA } from "./harness.ts"

const exec = promisify(execFile)
const NODE = process.execPath
const CHILD = fileURLToPath(new URL("../../support/prepare-child.ts", import.meta.url))
const python = await nodePython()

interface Child {
  readonly lines: Array<Record<string, unknown>>
  readonly exited: Promise<number | null>
  readonly untilLogged: (match: (line: Record<string, unknown>) => boolean) => Promise<void>
  readonly kill9: () => void
}

const startChild = (
  t: { after: (f: () => void) => void },
  prepare: PrepareReleaseInput,
  env: Record<string, string> = {}
): Child => {
  const child = spawn(NODE, [CHILD, JSON.stringify(prepare)], {
    // PATH: the test run's python3 without pyenv shims, as a node has (node-python.ts).
    env: { ...process.env, PATH: python.path, ...env },
    stdio: ["ignore", "pipe", "inherit"]
  })
  t.after(() => void child.kill("SIGKILL"))
  const lines: Array<Record<string, unknown>> = []
  const waiters: Array<{ match: (line: Record<string, unknown>) => boolean; resolve: () => void }> = []
  createInterface({ input: child.stdout }).on("line", (text) => {
    const line = JSON.parse(text) as Record<string, unknown>
    lines.push(line)
    for (const w of waiters) if (w.match(line)) w.resolve()
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return {
    lines,
    exited,
    untilLogged: (match) =>
      lines.some(match) ? Promise.resolve() : new Promise<void>((resolve, reject) => {
        waiters.push({ match, resolve })
        void exited.then(() => reject(new Error(`the child exited before that event; saw ${JSON.stringify(lines)}`)))
      }),
    kill9: () => void child.kill("SIGKILL")
  }
}

/**
 * Runs the release once more, to its end, and reports what a test asserts on: the exit
 * code, the last line (the outcome), what the venv computes with two of the wheels, the
 * release's markers and what else is left beside the release.
 */
const rerun = async (
  t: { after: (f: () => void) => void },
  prepare: PrepareReleaseInput,
  env: Record<string, string> = {}
) => {
  const again = startChild(t, prepare, env)
  const code = await again.exited
  const release = join(prepare.root, prepare.app, "releases", prepare.sha)
  const computed = await exec(join(release, ".venv", "bin", "python"), [
    "-c",
    "import pkg0, pkg5; print(pkg0.VALUE + pkg5.VALUE)"
  ]).then(({ stdout }) => stdout.trim(), (error: Error) => error.message)
  const outcome = {
    code,
    last: again.lines.at(-1),
    computed,
    markers: (await readdir(join(release, ".sacar")).catch(() => [])).sort(),
    // No partial downloads, extraction directories or tarball beside the release.
    releases: await readdir(join(prepare.root, prepare.app, "releases"))
  }
  return { outcome, release, lines: again.lines }
}

/** Which installer the install step took for the release (as it decides, wheel-installer.ts). */
const installer = (release: string) =>
  Effect.runPromise(planInstall(python.interpreter, { cwd: release, env: { PATH: python.path } }))

/** The outcome of a run that prepared the release from where the killed one left it. */
const readyWithWholeVenv = {
  code: 0,
  last: { outcome: "ready", alreadyReady: false },
  computed: "5",
  markers: ["installed", "prepared", "ready", "source", "venv"],
  releases: [SHA]
}

const PREPARE = `#!/bin/sh
echo run >> "$SACAR_RELEASE_DIR/prepare-runs"
sleep 2
echo done >> "$SACAR_RELEASE_DIR/prepare-runs"
`

describe("crash safety", { concurrency: true }, () => {
  test("kill -9 during a slow gs:// download, half unpacked, then again: ready", async (t) => {
    const dir = await scratch(t)
    const gcs = await startFakeGcs()
    t.after(() => gcs.close())
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), { wheels: smallWheels(6), prepare: PREPARE })
    gcs.put("builds", `shop/${SHA}.tgz`, await readFile(tarball.path))
    gcs.throttle({ chunkBytes: 256, delayMs: 50 })
    const prepare = input(join(dir, "root"), `gs://builds/shop/${SHA}.tgz`, {
      artifact: { url: `gs://builds/shop/${SHA}.tgz`, sha256: tarball.sha256 }
    })
    const env = { STORAGE_EMULATOR_HOST: gcs.url }
    const first = startChild(t, prepare, env)
    await first.untilLogged((l) => l.step === "download" && l.event === "Started")
    const releases = join(prepare.root, "shop", "releases")
    const cache = join(prepare.root, ".sacar", "artifacts")
    // Wait until the stream is half-way: entries unpacked, the cache file partly written.
    const midStream = async () => {
      const staging = (await readdir(releases).catch(() => [])).filter((f) => f.endsWith(".extract"))
      const unpacked = await Promise.all(staging.map((s) => readdir(join(releases, s)).catch(() => [])))
      const partial = (await readdir(cache).catch(() => [])).some((f) => f.endsWith(".partial"))
      return partial && unpacked.some((entries) => entries.length > 0)
    }
    await eventually("the download half-way through", midStream, 30_000)
    assert.ok(!first.lines.some((l) => l.step === "download" && l.event === "Finished"), "the download ended")
    first.kill9()
    await first.exited
    gcs.throttle(undefined)
    assert.deepEqual((await rerun(t, prepare, env)).outcome, readyWithWholeVenv)
    // The dead run's partial cache file is gone; the verified artifact is cached.
    assert.deepEqual(await readdir(cache), [`${tarball.sha256}.tgz`])
  })

  test("kill -9 during pip's install, then again: ready with a whole venv and no bytecode cache left in it", async (t) => {
    const dir = await scratch(t)
    const wheels = smallWheels(30)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      // Two versions of pkg0 and a range: pip chooses, so pip installs (wheel-installer.ts).
      wheels: [...wheels, { ...wheels[0]!, version: "1.1.0" }],
      requirements: wheels.map((w) => `${w.name}>=${w.version}`),
      prepare: PREPARE
    })
    const prepare = input(join(dir, "root"), pathToFileURL(tarball.path).href)
    const first = startChild(t, prepare)
    await first.untilLogged((l) => l.step === "install" && l.event === "Started")
    await sleep(400)
    assert.ok(
      !first.lines.some((l) => l.step === "install" && l.event === "Finished"),
      "install finished too soon to be interrupted"
    )
    first.kill9()
    await first.exited
    const again = await rerun(t, prepare)
    assert.deepEqual(again.outcome, readyWithWholeVenv)
    assert.equal((await installer(again.release))._tag, "Pip")
    // What the killed run compiled beside pip is gone from the venv, as is the rerun's own.
    assert.deepEqual((await readdir(join(again.release, ".venv"))).filter((n) => n.startsWith(".sacar")), [])
  })

  test("kill -9 during the direct install, some files written, then again: ready with every file and its RECORD", async (t) => {
    const dir = await scratch(t)
    const many = {
      name: "many",
      version: "1.0",
      modules: Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`many/m${i}.py`, `X = ${i}\n`]))
    }
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), {
      wheels: [...smallWheels(6), many],
      prepare: PREPARE
    })
    const prepare = input(join(dir, "root"), pathToFileURL(tarball.path).href)
    const lib = join(
      prepare.root,
      "shop",
      "releases",
      SHA,
      ".venv",
      "lib",
      `python${python.interpreter.minor}`,
      "site-packages"
    )
    const first = startChild(t, prepare)
    await first.untilLogged((l) => l.step === "install" && l.event === "Started")
    await eventually(
      "some of the wheel's files written",
      async () => {
        const written = (await readdir(join(lib, "many")).catch(() => [])).length
        return written > 20 && written < 1500
      },
      30_000,
      undefined,
      5
    )
    first.kill9()
    await first.exited
    const again = await rerun(t, prepare)
    assert.deepEqual(again.outcome, readyWithWholeVenv)
    assert.equal((await installer(again.release))._tag, "Direct")
    await exec(join(again.release, ".venv", "bin", "python"), ["-c", "import many.m0, many.m1499"])
    const record = await readFile(join(lib, "many-1.0.dist-info", "RECORD"), "utf8")
    const rows = record.split("\r\n").filter((r) => r !== "")
    assert.equal(rows.filter((r) => /^many\/m\d+\.py,sha256=/.test(r)).length, 1500)
    assert.equal(rows.filter((r) => /^many\/__pycache__\/m\d+\.cpython-\d+\.pyc,,$/.test(r)).length, 1500)
  })

  test("kill -9 during bin/prepare, then again: the orphaned script is ended and prepare runs to completion", async (t) => {
    const dir = await scratch(t)
    // The first run's script would sleep long after its reconciler died.
    const slowFirst = `#!/bin/sh
if [ -f prepare-runs ]; then pause=1; else pause=60; echo $$ > first-pid; fi
echo run >> prepare-runs
sleep $pause
echo done >> prepare-runs
`
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), { wheels: smallWheels(6), prepare: slowFirst })
    const prepare = input(join(dir, "root"), pathToFileURL(tarball.path).href)
    const first = startChild(t, prepare)
    await first.untilLogged((l) => l.step === "prepare" && l.event === "Started")
    await sleep(500)
    first.kill9()
    await first.exited
    const { outcome, release } = await rerun(t, prepare)
    assert.deepEqual(outcome, readyWithWholeVenv)
    // The first run's script was killed when the lock was taken over: it never finished.
    const orphan = Number(await readFile(join(release, "first-pid"), "utf8"))
    await eventually(`the orphaned bin/prepare (pid ${orphan}) to end`, () => hasEnded(orphan), 5_000)
    assert.equal(await readFile(join(release, "prepare-runs"), "utf8"), "run\nrun\ndone\n")
  })

  test("kill -9 right after extraction, then again: the extracted release is kept and goes on to ready", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "app.tgz"), { wheels: smallWheels(6) })
    const prepare = input(join(dir, "root"), pathToFileURL(tarball.path).href)
    const release = join(prepare.root, prepare.app, "releases", prepare.sha)
    /** What the dead run left: extracted, and no later step finished (the kill may land while the lock, a millisecond's work, is taken). */
    const leftExtracted = async (run: string) => {
      const left = await readdir(join(release, ".sacar"))
      assert.ok(left.includes("source"), `${run}: the extraction marker: ${left.join(", ")}`)
      for (const later of ["venv", "installed", "prepared", "ready"]) {
        assert.ok(!left.includes(later), `${run}: ${later} finished before the kill: ${left.join(", ")}`)
      }
    }

    // First kill: right after this run extracted the release.
    const first = startChild(t, prepare)
    await first.untilLogged((l) => l.step === "extract" && l.event === "Finished")
    first.kill9()
    await first.exited
    await leftExtracted("first run")
    const extracted = await stat(join(release, "requirements.txt"))

    // Second kill: right after the next run found the extraction done and kept it.
    const second = startChild(t, prepare)
    await second.untilLogged((l) => l.step === "extract" && l.event === "Finished")
    second.kill9()
    await second.exited
    assert.deepEqual(second.lines.find((l) => l.step === "extract" && l.event === "Finished"), {
      step: "extract",
      event: "Finished",
      skipped: true
    }, "the second run extracted again")
    await leftExtracted("second run")

    // A third run goes on to ready on the same extracted files.
    const { outcome, lines } = await rerun(t, prepare)
    assert.deepEqual(outcome, readyWithWholeVenv)
    assert.deepEqual(lines.find((l) => l.step === "extract" && l.event === "Finished"), {
      step: "extract",
      event: "Finished",
      skipped: true
    }, "the third run extracted again")
    assert.equal(
      (await stat(join(release, "requirements.txt"))).ino,
      extracted.ino,
      "the extracted files were replaced"
    )
  })
})
