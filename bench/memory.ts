// What an idle reconciler costs in memory, next to a bare Node process measured in the
// same run: a real `sacar reconciler` serving one app against dev-consul, through a
// release (real venv, real tarball) and a deploy, then left idle for 10 s.
// Started as the dist's entry script starts it (its Node options, and twice with the
// same NODE_COMPILE_CACHE folder), from the JavaScript the dist ships (src/bundle/
// javascript.ts, written to a scratch folder next to this checkout's node_modules), and
// for comparison from the TypeScript source: there the first start (empty cache) strips
// every file and keeps Node's type stripper in memory, and only a restart reads the
// cached code without loading it.
//
//   node_modules/.bin/node bench/memory.ts [--no-write]
//
// Appends to docs/benchmarks.md under "## memory" unless --no-write.

import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { execFileSync } from "node:child_process"
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { RECONCILER_NODE_OPTIONS, writeJavaScriptSource } from "../src/bundle/entries.ts"
import { startDevConsul } from "../src/devconsul/server.ts"
import { makeKeys } from "../src/spec/keys.ts"

const ROOT = join(fileURLToPath(import.meta.url), "..", "..")
const keys = makeKeys("sacar")
const SHA = "5ca1ab1e".repeat(5)
const IDLE_MS = 10_000

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const rssMiB = (pid: number, field: "VmRSS" | "VmHWM" = "VmRSS") =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null) return
  child.kill("SIGTERM")
  await new Promise((resolve) => child.once("exit", resolve))
}

async function main(): Promise<void> {
  const write = !process.argv.includes("--no-write")
  const work = mkdtempSync(join(tmpdir(), "sacar-memory-"))
  const dev = await startDevConsul({ port: 0, nodeName: "bench" })
  const kv = async (method: "GET" | "PUT", key: string, value?: unknown) => {
    const res = await fetch(`${dev.url}/v1/kv/${key}`, {
      method,
      ...(value === undefined ? {} : { body: JSON.stringify(value) })
    })
    if (method === "PUT" || res.status === 404) return undefined
    const [entry] = await res.json() as Array<{ Value: string | null }>
    return entry?.Value === null || entry === undefined ? undefined : Buffer.from(entry.Value, "base64").toString()
  }
  try {
    const artifacts = join(work, "artifacts")
    mkdirSync(join(artifacts, "src"), { recursive: true })
    writeFileSync(join(artifacts, "src", "app.py"), "print('hello')\n")
    execFileSync("tar", ["czf", join(artifacts, `${SHA}.tgz`), "-C", join(artifacts, "src"), "."])
    await kv("PUT", keys.config("solo"), { artifact: `file://${artifacts}/{sha}.tgz`, nodes: ["real-*"] })

    // The baseline: Node itself, doing nothing, in the same run on the same machine.
    const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
    // The dist's source: Sacar's JavaScript, its package.json ("type": "module", the
    // version) and the checkout's packages.
    const installed = join(work, "installed")
    await writeJavaScriptSource(ROOT, installed)
    copyFileSync(join(ROOT, "package.json"), join(installed, "package.json"))
    symlinkSync(join(ROOT, "node_modules"), join(installed, "node_modules"))
    const forms = [
      { name: "as installed (JavaScript)", entry: join(installed, "bin", "sacar.js") },
      { name: "from the TypeScript source", entry: join(ROOT, "bin", "sacar.ts") }
    ]
    const rows: Array<{ run: string; idle: number; peak: number }> = []
    for (const [n, form] of forms.entries()) {
      const node = `real-${n + 1}`
      const cache = join(work, `compile-cache-${n}`)
      const start = () =>
        // As the dist's entry script starts it (src/bundle/entries.ts).
        spawn(process.execPath, [...RECONCILER_NODE_OPTIONS, form.entry, "reconciler"], {
          env: {
            ...process.env,
            CONSUL_HTTP_ADDR: dev.url,
            SACAR_NODE: node,
            SACAR_ROOT: join(work, `root-${n}`),
            SACAR_LOG_LEVEL: "warn",
            NODE_COMPILE_CACHE: cache
          },
          stdio: ["ignore", "ignore", "inherit"]
        })
      const status = async () => {
        const text = await kv("GET", keys.status("solo", node))
        return text === undefined ? undefined : JSON.parse(text) as {
          releases: Record<string, { phase: string }>
          deploy: { phase: string } | null
        }
      }
      const until = async (check: (s: Awaited<ReturnType<typeof status>>) => boolean, what: string) => {
        const deadline = Date.now() + 300_000
        while (!check(await status())) {
          if (Date.now() > deadline) throw new Error(`reconciler: timed out waiting for ${what}`)
          await sleep(200)
        }
      }
      let child = start()
      try {
        await until((s) => s !== undefined, "its status")
        if (n === 0) await kv("PUT", keys.release("solo", SHA), {})
        await until((s) => s?.releases[SHA]?.phase === "ready", "the release")
        if (n === 0) await kv("PUT", keys.deploy("solo"), { sha: SHA })
        await until((s) => s?.deploy?.phase === "live", "the deploy")
        await sleep(IDLE_MS)
        rows.push({
          run: `${form.name}, first start (empty compile cache), after a release and a deploy`,
          idle: rssMiB(child.pid!),
          peak: rssMiB(child.pid!, "VmHWM")
        })
        await stop(child)
        // A restart: the same node, its app live, the compile cache filled by the first start.
        child = start()
        await sleep(IDLE_MS)
        await until((s) => s?.deploy?.phase === "live", "the restart to settle")
        rows.push({
          run: `${form.name}, restart (compile cache warm), idle serving the live app`,
          idle: rssMiB(child.pid!),
          peak: rssMiB(child.pid!, "VmHWM")
        })
      } finally {
        await stop(child)
      }
    }
    const bareMiB = rssMiB(bare.pid!)
    await stop(bare)

    const lines = [
      "",
      "## memory",
      "",
      `Run ${new Date().toISOString()} on ${cpus().length} cores, load average ${
        loadavg().map((l) => l.toFixed(1)).join(" ")
      }. \`node_modules/.bin/node bench/memory.ts\`: one real \`sacar reconciler\` serving one app against dev-consul, RSS after ${
        IDLE_MS / 1000
      } s idle.`,
      "",
      "| process | RSS idle | peak RSS | over bare Node |",
      "|---|---|---|---|",
      `| bare \`node -e\` (same run) | ${bareMiB.toFixed(0)} MiB | | |`,
      ...rows.map((r) =>
        `| reconciler, ${r.run} | ${r.idle.toFixed(0)} MiB | ${r.peak.toFixed(0)} MiB | +${
          (r.idle - bareMiB).toFixed(0)
        } MiB |`
      ),
      ""
    ]
    const text = lines.join("\n")
    console.log(text)
    if (write) appendFileSync(join(ROOT, "docs", "benchmarks.md"), text)
  } finally {
    await dev.close()
    rmSync(work, { recursive: true, force: true })
  }
}

await main()
