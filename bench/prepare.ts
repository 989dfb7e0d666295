// How long Sacar's prepareRelease takes against the plain shell sequence it replaces.
//
// One release tarball with 31 small pure-Python wheels and a trivial bin/prepare. Each
// round runs, in alternating order, (a) prepareRelease from a file:// URL into a fresh
// SACAR_ROOT release and (b) a shell script doing `tar xzf`, `python -m venv`,
// `.venv/bin/pip install --no-index --find-links wheels -r requirements.txt` and
// `bin/prepare` in a fresh directory, with the same interpreter. One untimed warm-up of
// each first: Sacar's shared pip is unpacked once per node, and the OS caches settle.
//
//   node_modules/.bin/node bench/prepare.ts [--rounds N] [--no-write]
//
// Prints both medians and the ratio (target <= 0.8); appends them to docs/benchmarks.md
// under "## prepare" unless --no-write.

import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { ArtifactStore } from "../src/artifacts/store.ts"
import { makePython, Python } from "../src/python/python.ts"
import { prepareRelease } from "../src/reconciler/prepare.ts"
import { buildReleaseTarball, smallWheels } from "../test/support/tarballs.ts"

const exec = promisify(execFile)
const args = process.argv.slice(2)
const rounds = Number(args[args.indexOf("--rounds") + 1]) || 5
const write = !args.includes("--no-write")
const WHEELS = 31
const TARGET = 0.8

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const work = await mkdtemp(join(tmpdir(), "sacar-bench-prepare-"))
try {
  const tarball = await buildReleaseTarball(join(work, "app.tgz"), {
    wheels: smallWheels(WHEELS),
    prepare: "#!/bin/sh\npython -c 'import pkg0, pkg30' && echo prepared > prepared.txt\n"
  })
  const services = Layer.mergeAll(ArtifactStore.layer, Python.layer)
  const interpreter = await Effect.runPromise(makePython(process.env.PATH ?? "").resolve({ fallback: "python3" }))

  const plainScript = join(work, "plain.sh")
  await writeFile(
    plainScript,
    [
      "#!/bin/sh",
      "set -e",
      "mkdir -p \"$1\" && cd \"$1\"",
      `tar xzf ${tarball.path}`,
      `${interpreter.path} -m venv .venv`,
      ".venv/bin/pip install --quiet --disable-pip-version-check --no-index --find-links wheels -r requirements.txt",
      "PATH=\"$PWD/.venv/bin:$PATH\" COMMIT_SHA=0 bin/prepare",
      ""
    ].join("\n"),
    { mode: 0o755 }
  )

  let counter = 0
  const sha = () => (counter++).toString(16).padStart(40, "0")
  const root = join(work, "root")

  const sacar = async () => {
    const started = performance.now()
    await Effect.runPromise(
      prepareRelease({
        app: "bench",
        sha: sha(),
        node: "bench-node",
        root,
        artifact: { url: pathToFileURL(tarball.path).href, sha256: tarball.sha256 },
        prepareTimeoutMs: 600_000,
        defaultPython: interpreter.path
      }, () => Effect.void).pipe(Effect.provide(services))
    )
    return performance.now() - started
  }
  const plain = async () => {
    const started = performance.now()
    await exec(plainScript, [join(work, "plain", String(counter++))])
    return performance.now() - started
  }

  await sacar()
  await plain()
  // Both really did the work: the packages import from each venv, and bin/prepare ran.
  for (const dir of [join(root, "bench", "releases", (0).toString(16).padStart(40, "0")), join(work, "plain", "1")]) {
    await exec(join(dir, ".venv", "bin", "python"), ["-c", "import pkg0, pkg30"])
    if (!existsSync(join(dir, "prepared.txt"))) throw new Error(`bin/prepare did not run in ${dir}`)
  }
  const times = { sacar: [] as Array<number>, plain: [] as Array<number> }
  for (let round = 0; round < rounds; round++) {
    // Alternate who goes first, so drift in machine load hits both alike.
    if (round % 2 === 0) {
      times.sacar.push(await sacar())
      times.plain.push(await plain())
    } else {
      times.plain.push(await plain())
      times.sacar.push(await sacar())
    }
    process.stdout.write(
      `round ${round + 1}/${rounds}: sacar ${times.sacar.at(-1)!.toFixed(0)} ms, plain ${
        times.plain.at(-1)!.toFixed(0)
      } ms\n`
    )
  }
  const s = median(times.sacar)
  const p = median(times.plain)
  const ratio = s / p
  const verdict = ratio <= TARGET ? "meets" : "misses"
  const summary = [
    `prepareRelease median ${(s / 1000).toFixed(2)} s, plain shell median ${(p / 1000).toFixed(2)} s, ratio ${
      ratio.toFixed(2)
    } (${verdict} the target <= ${TARGET})`,
    `${rounds} interleaved rounds, ${WHEELS} wheels, Python ${interpreter.version}, ${cpus().length} CPUs, load average ${
      loadavg()[0]!.toFixed(1)
    }`
  ]
  console.log(summary.join("\n"))

  if (write) {
    const file = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
    const body = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n"
    const line = `- ${new Date().toISOString().slice(0, 16)}Z: ${summary.join("; ")}`
    const heading = body.indexOf("\n## prepare\n")
    if (heading === -1) {
      writeFileSync(
        file,
        body.replace(/\n*$/, "\n") + [
          "",
          "## prepare",
          "",
          "`node_modules/.bin/node bench/prepare.ts`: the full prepareRelease (download from file://,",
          "checked extraction, lock, venv without pip, install with the shared pip, bin/prepare)",
          "against a shell script doing `tar xzf`, `python -m venv`, `pip install --no-index",
          "--find-links wheels -r requirements.txt`, `bin/prepare`. Medians of interleaved runs;",
          "compare the ratio, not absolute times (shared, noisy machines).",
          "",
          line,
          ""
        ].join("\n")
      )
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
