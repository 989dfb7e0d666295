// How long Sacar's prepareRelease takes against the plain shell sequence it replaces,
// on a first release on a fresh node (cold) and on a second release whose dependencies
// did not change (reused).
//
// The tarball: 30 small pure-Python wheels plus the setuptools wheel the interpreter
// bundles in ensurepip/_bundled (about 240 files), requirements.txt pinning all 31 (as a
// lock file does), an app module and a bin/prepare that imports from the venv. Each
// round, in rotating order:
//   - plain: `tar xzf`, `python -m venv .venv`, `.venv/bin/pip install --no-index
//     --find-links wheels -r requirements.txt`, `bin/prepare`, in a fresh directory;
//   - cold: prepareRelease into a fresh SACAR_ROOT (no shared pip unpacked yet, no
//     template, nothing cached), from a file:// URL;
//   - reused: a second release into that same root, same wheels and requirements, a
//     changed app module, another sha (so another artifact);
//   - cold with pip: as cold, but requirements.txt names each wheel with `>=` and wheels/
//     holds a second version of pkg0, so pip chooses and pip installs (without a choice
//     to make, src/python/wheel-installer.ts installs directly): a wheelhouse shared
//     between builds.
// Cold and reused share one Python service and one set of fibers for the work a release
// leaves for later (steps/later.ts), as one reconciler's releases do. A release is timed
// until it is ready; the work it left for later is timed apart and awaited before the
// next run, as a node's next release comes minutes later.
// Ratios are median(cold) / median(plain), median(reused) / median(plain), and the same
// for cold with pip (no target: reported so the pip path's figure stays in sight).
//
//   node_modules/.bin/node bench/prepare.ts [--rounds N] [--no-write]
//
// Appends the figures, the step breakdown and the load average to docs/benchmarks.md
// under "## prepare" unless --no-write.

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { execFile } from "node:child_process"
import { copyFile, existsSync, readFileSync, writeFileSync } from "node:fs"
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises"
import { cpus, loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { ArtifactStore } from "../src/artifacts/store.ts"
import { makePython, Python } from "../src/python/python.ts"
import { STEPS } from "../src/reconciler/steps/errors.ts"
import { LaterWork } from "../src/reconciler/steps/later.ts"
import type { LaterWorkSet } from "../src/reconciler/steps/later.ts"
import { prepareRelease } from "../src/reconciler/steps/pipeline.ts"
import type { PreparedRelease } from "../src/reconciler/steps/pipeline.ts"
import { buildReleaseTarball, smallWheels } from "../test/support/tarballs.ts"

const exec = promisify(execFile)
const copy = promisify(copyFile)
const args = process.argv.slice(2)
const rounds = Number(args[args.indexOf("--rounds") + 1]) || 5
const write = !args.includes("--no-write")
const SMALL_WHEELS = 30
const TARGET = { cold: 0.5, reused: 0.1 }

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`

const work = await mkdtemp(join(tmpdir(), "sacar-bench-prepare-"))
try {
  const interpreter = await Effect.runPromise(makePython(process.env.PATH ?? "").resolve({ fallback: "python3" }))
  const bundled = dirname(interpreter.bundledPip ?? "")
  const setuptools = (await readdir(bundled)).find((f) => f.startsWith("setuptools-") && f.endsWith(".whl"))
  if (setuptools === undefined) throw new Error(`no setuptools wheel in ${bundled}`)
  const setuptoolsVersion = setuptools.split("-")[1]!

  // Three tarballs: same wheels and pins, different app (the second release); then the
  // same wheels, and another version of pkg0, with ranges instead of pins.
  const tarballs = await Promise.all([1, 2, 3].map(async (n) => {
    const out = join(work, `app-${n}.tgz`)
    const wheels = smallWheels(SMALL_WHEELS)
    const op = n === 3 ? ">=" : "=="
    return buildReleaseTarball(out, {
      wheels: n === 3 ? [...wheels, { ...wheels[0]!, version: "1.1.0" }] : wheels,
      requirements: [...wheels.map((w) => `${w.name}${op}${w.version}`), `setuptools${op}${setuptoolsVersion}`],
      prepare: "#!/bin/sh\npython -c 'import pkg0, pkg29, setuptools' && echo prepared > prepared.txt\n",
      files: { "app/main.py": `RELEASE = ${n}\n` }
    })
  }))
  // buildReleaseTarball writes text files only: add the setuptools wheel and pack again.
  for (const [i, t] of tarballs.entries()) {
    const stage = join(work, `stage-${i}`)
    await exec("mkdir", ["-p", stage])
    await exec("tar", ["xzf", t.path, "-C", stage])
    await copy(join(bundled, setuptools), join(stage, "wheels", setuptools))
    await exec("tar", ["czf", t.path, "-C", stage, "."])
    await rm(stage, { recursive: true, force: true })
  }
  const artifacts = await Promise.all(tarballs.map(async (t) => ({
    path: t.path,
    url: pathToFileURL(t.path).href,
    sha256: (await exec("sha256sum", [t.path])).stdout.split(" ")[0]!
  })))
  const wheelCount = (await exec("tar", ["tzf", artifacts[0]!.path])).stdout.split("\n").filter((l) =>
    l.endsWith(".whl")
  ).length

  const plainScript = join(work, "plain.sh")
  await writeFile(
    plainScript,
    [
      "#!/bin/sh",
      "set -e",
      "mkdir -p \"$1\" && cd \"$1\"",
      `tar xzf "$2"`,
      `${interpreter.path} -m venv .venv`,
      ".venv/bin/pip install --quiet --disable-pip-version-check --no-index --find-links wheels -r requirements.txt",
      "PATH=\"$PWD/.venv/bin:$PATH\" COMMIT_SHA=0 bin/prepare",
      ""
    ].join("\n"),
    { mode: 0o755 }
  )

  let counter = 0
  // One Python service per node, as one reconciler holds one for its life: a node looks
  // its interpreter up once (src/python/python.ts keeps it for a minute), not per release.
  const nodeServices = () =>
    Layer.mergeAll(ArtifactStore.layer, Layer.succeed(Python, makePython(process.env.PATH ?? "")))
  const sacar = async (
    root: string,
    artifact: (typeof artifacts)[number],
    services: ReturnType<typeof nodeServices>,
    later: LaterWorkSet
  ) => {
    const sha = (++counter).toString(16).padStart(40, "0")
    const started = performance.now()
    const prepared: PreparedRelease = await Effect.runPromise(
      prepareRelease({
        app: "bench",
        sha,
        node: "bench-node",
        root,
        artifact: { url: artifact.url, sha256: artifact.sha256 },
        prepareTimeoutMs: 600_000,
        defaultPython: interpreter.path
      }, () => Effect.void).pipe(Effect.provide(services), Effect.provideService(LaterWork, later))
    )
    const ms = performance.now() - started
    // What the release left for later (keeping its venv for reuse), timed apart: a node's
    // next release comes minutes later, not at once, so it finds that work done.
    const laterStarted = performance.now()
    await Effect.runPromise(FiberSet.awaitEmpty(later))
    const laterMs = performance.now() - laterStarted
    const dir = join(root, "bench", "releases", sha)
    // It really did the work: the packages import from its venv, and bin/prepare ran.
    await exec(join(dir, ".venv", "bin", "python"), ["-c", "import pkg0, pkg29, setuptools, app.main"], { cwd: dir })
    if (!existsSync(join(dir, "prepared.txt"))) throw new Error(`bin/prepare did not run in ${dir}`)
    return { ms, laterMs, prepared }
  }
  const plain = async () => {
    const dir = join(work, "plain", String(++counter))
    const started = performance.now()
    // As a user's shell would run it, without this machine's PIP_* and PYTHON* settings
    // (Sacar's own children get an environment built from nothing, too).
    await exec(plainScript, [dir, artifacts[0]!.path], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", LANG: "C.UTF-8" }
    })
    const ms = performance.now() - started
    if (!existsSync(join(dir, "prepared.txt"))) throw new Error(`bin/prepare did not run in ${dir}`)
    await rm(dir, { recursive: true, force: true })
    return ms
  }

  const load = { before: loadavg()[0]! }
  type Kind = "cold" | "reused" | "pip"
  const KINDS: ReadonlyArray<Kind> = ["cold", "reused", "pip"]
  const times: Record<Kind | "plain", Array<number>> = { plain: [], cold: [], reused: [], pip: [] }
  const laterTimes: Record<Kind, Array<number>> = { cold: [], reused: [], pip: [] }
  const steps: Record<Kind, Array<PreparedRelease["steps"]>> = { cold: [], reused: [], pip: [] }
  for (let round = 0; round < rounds; round++) {
    const root = join(work, `node-${round}`)
    const services = nodeServices()
    // The node's set of fibers for later work, as a reconciler holds one for its life.
    const nodeScope = Effect.runSync(Scope.make())
    const later = Effect.runSync(Scope.provide(nodeScope)(FiberSet.make<void, never>()))
    const timed = (kind: Kind, nodeRoot: string, artifact: (typeof artifacts)[number]) => async () => {
      const r = await sacar(nodeRoot, artifact, services, later)
      if (kind === "reused" && r.prepared.steps.install?.reusedFrom === undefined) {
        throw new Error("the second release did not reuse")
      }
      times[kind].push(r.ms)
      laterTimes[kind].push(r.laterMs)
      steps[kind].push(r.prepared.steps)
    }
    const cold = timed("cold", root, artifacts[0]!)
    const reused = timed("reused", root, artifacts[1]!)
    // Another fresh node: nothing of the pinned release's (shared pip, template) helps it.
    const withPip = timed("pip", `${root}-pip`, artifacts[2]!)
    const plainRun = async () => void times.plain.push(await plain())
    // Rotate where the plain path runs, so drift in machine load hits all alike.
    const order = [[plainRun, cold, reused, withPip], [cold, plainRun, reused, withPip], [
      cold,
      reused,
      withPip,
      plainRun
    ]][
      round % 3
    ]!
    for (const run of order) await run()
    await Effect.runPromise(Scope.close(nodeScope, Exit.void))
    await rm(root, { recursive: true, force: true })
    await rm(`${root}-pip`, { recursive: true, force: true })
    process.stdout.write(
      `round ${round + 1}/${rounds}: plain ${times.plain.at(-1)!.toFixed(0)} ms, ${
        KINDS.map((k) => `${k} ${times[k].at(-1)!.toFixed(0)} ms`).join(", ")
      }, load ${loadavg()[0]!.toFixed(1)}\n`
    )
  }
  const after = loadavg()[0]!
  const p = median(times.plain)
  const ratio = (kind: Kind) => median(times[kind]) / p
  const verdict = (r: number, target: number) => `${r.toFixed(2)} (${r <= target ? "meets" : "misses"} <= ${target})`
  const breakdown = (kind: Kind) =>
    STEPS.map((s) => `${s} ${median(steps[kind].map((x) => x[s]?.ms ?? 0)).toFixed(0)}`).join(", ")
  const summary = [
    `plain median ${seconds(p)}; cold median ${seconds(median(times.cold))}, ratio ${
      verdict(ratio("cold"), TARGET.cold)
    }; reused median ${seconds(median(times.reused))}, ratio ${
      verdict(ratio("reused"), TARGET.reused)
    }; cold with pip (ranges, two versions of pkg0) median ${seconds(median(times.pip))}, ratio ${
      ratio("pip").toFixed(2)
    }`,
    `step medians in ms, cold: ${breakdown("cold")}; reused: ${breakdown("reused")}; cold with pip: ${
      breakdown("pip")
    }`,
    `work left for later after ready (keeping the venv for reuse, not counted above), medians: ${
      KINDS.map((k) => `${k} ${seconds(median(laterTimes[k]))}`).join(", ")
    }`,
    `${rounds} interleaved rounds, ${wheelCount} wheels (${setuptools} among them), Python ${interpreter.version}, ${cpus().length} CPUs, load average ${
      load.before.toFixed(1)
    } before and ${after.toFixed(1)} after`
  ]
  console.log(summary.join("\n"))

  if (write) {
    const file = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
    const body = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n"
    const line = `- ${new Date().toISOString().slice(0, 16)}Z: ${summary.join("; ")}`
    const heading = body.indexOf("\n## prepare\n")
    if (heading === -1) {
      writeFileSync(file, body.replace(/\n*$/, "\n") + ["", "## prepare", "", line, ""].join("\n"))
    } else {
      // Append to the end of this section, before the next one.
      const next = body.indexOf("\n## ", heading + 1)
      const end = next === -1 ? body.length : next
      const before = body.slice(0, end).replace(/\n*$/, "\n")
      writeFileSync(file, `${before}${line}\n${next === -1 ? "" : "\n"}${body.slice(end).replace(/^\n*/, "")}`)
    }
  }
} finally {
  await rm(work, { recursive: true, force: true })
}
