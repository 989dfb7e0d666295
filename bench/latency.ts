// How fast a ReleaseSpec reaches the nodes: 20 real `sacar reconciler` processes on one
// machine (spawned as the end-to-end tests spawn them), one app, against dev-consul.
// Each round writes a new ReleaseSpec and measures, for every node, the time from the
// write to the first answer of the bench's blocking query on `<app>/status/` that shows
// the release in that node's status (any phase: the node has taken it up). The artifact
// is served by an HTTP server that never answers, so the download is still running when
// the status is seen and no Python step runs; the round ends by deleting the ReleaseSpec
// (the nodes cancel the download) and waiting for the statuses to drop it.
//
//   node_modules/.bin/node bench/latency.ts [--nodes=20] [--rounds=10] [--gap-ms=2000] [--used-app] [--no-write]
//
// Baseline, measured in the same rounds: a plain blocking query on `<app>/releases/`
// (what each node watches), from the write to its answer. The reconcilers start as the
// dist's entry script starts them (its Node options, NODE_COMPILE_CACHE); each node's
// CPU (user + system, /proc) is reported per reaction over rounds 2..N, and for the
// first round (its first reaction compiles the preparation path) on its own. Appends to docs/benchmarks.md
// under "## latency" unless --no-write.

import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { Agent, createServer, request as httpRequest } from "node:http"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { RECONCILER_NODE_OPTIONS } from "../src/bundle/entries.ts"
import { startDevConsul } from "../src/devconsul/server.ts"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const SACAR = join(ROOT, "bin", "sacar.ts")
const PREFIX = "sacar"
const APP = "latency"

const arg = (name: string, fallback: number) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`))
  return hit === undefined ? fallback : Number(hit.slice(name.length + 3))
}
const NODES = arg("nodes", 20)
const ROUNDS = arg("rounds", 10)
const GAP_MS = arg("gap-ms", 2_000)
const WRITE = !process.argv.includes("--no-write")
/**
 * The app has had a release before (one written and deleted before the nodes start):
 * `releases/` then has a tombstone and its own index. Without one (a brand-new app) an
 * empty prefix reports the whole KV table's index, so every node's status write wakes
 * every node's `releases/` watch, which its token bucket then paces like any churn
 * (src/consul/watch.ts): the first ReleaseSpec right after the nodes start can wait up
 * to about a second for that.
 */
const USED_APP = process.argv.includes("--used-app")

/**
 * BENCH_CPU_PROF=<folder>: the first node runs with `--cpu-prof` into that folder (its
 * profile is written as it exits), to see where a reaction's CPU goes; run the bench
 * itself with `--cpu-prof` for dev-consul's side.
 */
const PROFILE_DIR = process.env["BENCH_CPU_PROF"]
const profile = (n: number): string[] =>
  PROFILE_DIR === undefined || n !== 0 ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`]

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const sha = () => randomBytes(20).toString("hex")

interface Entry {
  readonly Key: string
  readonly Value: string | null
}

/**
 * The bench's own requests, through node:http with one keep-alive Agent: its watchers
 * share their process (and the machine's two cores) with dev-consul, and `fetch`
 * (undici) cost more CPU per request there than dev-consul's own handling of it.
 */
const agent = new Agent({ keepAlive: true })
const request = (
  url: string,
  method = "GET",
  body?: string
): Promise<{ status: number; index: number; text: string }> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          index: Number(res.headers["x-consul-index"] ?? "0"),
          text: Buffer.concat(chunks).toString("utf8")
        }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end(body)
  })

/** One blocking read: the entries under `prefix` and the index, after `index` moves. */
const list = async (addr: string, prefix: string, index: number): Promise<{ entries: Entry[]; index: number }> => {
  const res = await request(`${addr}/v1/kv/${prefix}?recurse&index=${index}&wait=30s`)
  const entries = res.status === 404 ? [] : (JSON.parse(res.text) as Entry[])
  return { entries, index: res.index }
}

const decode = (value: string | null) => value === null ? "" : Buffer.from(value, "base64").toString("utf8")

/** Calls `onAnswer` with every answer of a blocking query on `prefix`, until `stop()`. */
const follow = (addr: string, prefix: string, onAnswer: (entries: Entry[], at: number) => void) => {
  let running = true
  const done = (async () => {
    let index = 0
    while (running) {
      try {
        const answer = await list(addr, prefix, index)
        onAnswer(answer.entries, performance.now())
        index = answer.index < index ? 0 : answer.index
      } catch {
        await sleep(100)
      }
    }
  })()
  return {
    stop: () => {
      running = false
      return done
    }
  }
}

/** CPU time (user + system) a process has used so far, in ms (clock ticks of 10 ms). */
const cpuMs = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const main = async () => {
  const dev = await startDevConsul({ port: 0, host: "127.0.0.1", nodeName: "bench" })
  const addr = dev.url
  // dev-consul does not hand out its http.Server; it is this process's only listener so far.
  const handles = (process as unknown as { _getActiveHandles(): Array<unknown> })._getActiveHandles()
  const listener = handles.find((h) => (h as { listening?: boolean }).listening === true) as Server
  // When each node's status PUT reached Consul, to tell the nodes' delay from the bench's watch.
  let onPut: ((node: string, at: number) => void) | undefined
  listener.on("request", (req: IncomingMessage) => {
    const m = req.method === "PUT" ? /\/status\/([^/?]+)/.exec(req.url ?? "") : null
    if (m !== null) onPut?.(m[1]!, performance.now())
  })
  const put = async (key: string, value: string) => {
    const res = await request(`${addr}/v1/kv/${PREFIX}/${key}`, "PUT", value)
    if (res.status !== 200) throw new Error(`PUT ${key}: ${res.status}`)
  }
  const del = (key: string) => request(`${addr}/v1/kv/${PREFIX}/${key}`, "DELETE")

  // An artifact that never arrives: the download holds until the ReleaseSpec goes.
  const held = new Set<ServerResponse>()
  const artifacts = createServer((_req, res) => {
    held.add(res)
    res.on("close", () => held.delete(res))
  })
  await new Promise<void>((resolve) => artifacts.listen(0, "127.0.0.1", resolve))
  const port = (artifacts.address() as { port: number }).port
  await put(`${APP}/config`, JSON.stringify({ artifact: `http://127.0.0.1:${port}/{sha}.tgz`, nodes: ["*"] }))
  if (USED_APP) {
    const earlier = sha()
    await put(`${APP}/releases/${earlier}`, "{}")
    await del(`${APP}/releases/${earlier}`)
  }

  const root = mkdtempSync(join(tmpdir(), "sacar-latency-"))
  const children: ChildProcess[] = []
  const cleanup = async () => {
    // SIGTERM first: a reconciler run with --cpu-prof writes its profile as it exits.
    const exited = children.filter((c) => c.exitCode === null).map((c) =>
      new Promise<void>((resolve) => {
        c.once("exit", () => resolve())
        c.kill("SIGTERM")
      })
    )
    await Promise.race([Promise.all(exited), sleep(5_000)])
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
    for (const res of held) res.destroy()
    artifacts.closeAllConnections()
    artifacts.close()
    agent.destroy()
    await dev.close()
    rmSync(root, { recursive: true, force: true })
  }
  process.on("SIGINT", () => void cleanup().then(() => process.exit(130)))

  for (let n = 0; n < NODES; n++) {
    const node = `node-${String(n).padStart(2, "0")}`
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SACAR_NODE: node,
      SACAR_ROOT: join(root, node),
      SACAR_PREFIX: PREFIX,
      CONSUL_HTTP_ADDR: addr,
      SACAR_LOG_LEVEL: process.env["BENCH_LOG_LEVEL"] ?? "warn",
      SACAR_LOG_FORMAT: "json",
      // As the dist's entry script starts a reconciler (src/bundle/entries.ts): the same
      // compile cache folder, set before Node starts, so the entry file is cached too.
      NODE_COMPILE_CACHE: process.env["NODE_COMPILE_CACHE"] ?? join(tmpdir(), "node-compile-cache")
    }
    children.push(
      spawn(process.execPath, [...RECONCILER_NODE_OPTIONS, ...profile(n), SACAR, "reconciler"], {
        env,
        stdio: ["ignore", "ignore", "inherit"]
      })
    )
  }

  // Every node writes its (empty) status once it serves the app.
  const statuses = new Map<string, { releases?: Record<string, unknown> }>()
  let onStatus: ((at: number) => void) | undefined
  const statusWatch = follow(addr, `${PREFIX}/${APP}/status/`, (entries, at) => {
    statuses.clear()
    for (const e of entries) {
      try {
        statuses.set(e.Key.split("/").pop()!, JSON.parse(decode(e.Value)))
      } catch {
        // A value that does not parse shows nothing.
      }
    }
    onStatus?.(at)
  })
  const started = performance.now()
  while (statuses.size < NODES) {
    if (performance.now() - started > 180_000) throw new Error(`only ${statuses.size} of ${NODES} nodes started`)
    await sleep(200)
  }
  process.stdout.write(`${NODES} reconcilers serving after ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
  await sleep(3_000)

  let onRelease: ((at: number) => void) | undefined
  const releaseWatch = follow(addr, `${PREFIX}/${APP}/releases/`, (_entries, at) => onRelease?.(at))

  // The nodes' CPU over rounds 2..N (start-up and the first round excluded): a round is
  // two reactions, the write and the delete.
  let cpuBefore: number[] = []
  const cpuAtStart = children.map((c) => cpuMs(c.pid!))
  const perNode: number[] = []
  const lastNode: number[] = []
  const baseline: number[] = []
  const reached: number[] = []
  const load: number[] = []
  /** This process's CPU from the write until every node's status showed it: dev-consul's, and the bench's own watchers. */
  const serverCpuPerRound: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    if (round === 1) cpuBefore = children.map((c) => cpuMs(c.pid!))
    const release = sha()
    const seen = new Map<string, number>()
    let woke: number | undefined
    let t0 = 0
    const all = Promise.withResolvers<void>()
    const check = (at: number) => {
      for (const [node, status] of statuses) {
        if (!seen.has(node) && status.releases?.[release] !== undefined) seen.set(node, at - t0)
      }
      if (seen.size === NODES) all.resolve()
    }
    onStatus = check
    onRelease = (at) => (woke ??= at - t0)
    const puts = new Map<string, number>()
    onPut = (node, at) => {
      if (!puts.has(node)) puts.set(node, at - t0)
    }
    load.push(loadavg()[0]!)
    t0 = performance.now()
    const serverCpu = process.cpuUsage()
    await put(`${APP}/releases/${release}`, "{}")
    const timeout = setTimeout(() => all.reject(new Error(`round ${round}: ${seen.size} of ${NODES} nodes`)), 30_000)
    await all.promise
    clearTimeout(timeout)
    const times = [...seen.values()]
    const used = process.cpuUsage(serverCpu)
    if (round > 0) serverCpuPerRound.push((used.user + used.system) / 1000)
    onPut = undefined
    reached.push(...puts.values())
    perNode.push(...times)
    lastNode.push(Math.max(...times))
    if (woke !== undefined) baseline.push(woke)
    process.stdout.write(
      `round ${round + 1}: baseline ${woke?.toFixed(1)} ms, nodes median ${
        percentile([...times].sort((a, b) => a - b), 50).toFixed(0)
      } ms, last ${Math.max(...times).toFixed(0)} ms; first status PUTs reached Consul at ${
        [...puts.values()].sort((a, b) => a - b).map((x) => x.toFixed(0)).join(" ")
      }\n`
    )
    onStatus = undefined
    await del(`${APP}/releases/${release}`)
    const gone = performance.now()
    while ([...statuses.values()].some((s) => s.releases?.[release] !== undefined)) {
      if (performance.now() - gone > 30_000) throw new Error(`round ${round}: the release stayed in the statuses`)
      await sleep(100)
    }
    await sleep(GAP_MS)
  }
  onRelease = undefined
  // The first round after start: what compiling the code of a reaction costs on top.
  const cpuFirstRound = cpuBefore.map((c, i) => c - cpuAtStart[i]!).sort((a, b) => a - b)
  const cpuPerReaction = children.map((c, i) => (cpuMs(c.pid!) - cpuBefore[i]!) / (2 * (ROUNDS - 1))).sort((a, b) =>
    a - b
  )
  await Promise.race([Promise.all([statusWatch.stop(), releaseWatch.stop()]), sleep(100)])

  const sorted = [...perNode].sort((a, b) => a - b)
  const sortedBase = [...baseline].sort((a, b) => a - b)
  const sortedReached = [...reached].sort((a, b) => a - b)
  const ms = (x: number) => `${x.toFixed(0)} ms`
  const row = `| ${NODES} | ${ROUNDS} | ${ms(percentile(sorted, 50))} | ${ms(percentile(sorted, 99))} | ${
    ms(sorted.at(-1)!)
  } | ${ms(percentile([...lastNode].sort((a, b) => a - b), 50))} | ${ms(lastNode[0]!)} | ${
    percentile(sortedBase, 50).toFixed(1)
  } / ${sortedBase.at(-1)!.toFixed(1)} ms | ${ms(percentile(sortedReached, 50))} / ${ms(sortedReached.at(-1)!)} | ${
    percentile(cpuPerReaction, 50).toFixed(1)
  } / ${cpuPerReaction.at(-1)!.toFixed(1)} ms | ${percentile(cpuFirstRound, 50).toFixed(0)} ms | ${
    percentile([...serverCpuPerRound].sort((a, b) => a - b), 50).toFixed(0)
  } ms | ${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)} |\n`
  const header = "| nodes | rounds | write -> node's status shows it, median | p99 | max | last node, median " +
    "| last node, first round " +
    "| baseline: plain watcher on releases/, median / max | the node's first status PUT reaches Consul, median / max " +
    "| one node's CPU per reaction (write or delete, rounds 2-N), median / max " +
    "| one node's CPU in the first round (its two reactions), median " +
    "| dev-consul and the bench's watchers (one process): CPU from the write until every status showed it, rounds 2-N, median " +
    "| load average (1 min) |\n" +
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
  process.stdout.write(`\n${header}${row}`)
  if (WRITE) {
    appendFileSync(
      join(ROOT, "docs", "benchmarks.md"),
      `\n## latency\n\n\`node_modules/.bin/node bench/latency.ts --nodes=${NODES} --rounds=${ROUNDS}\` on ${cpus().length} cores, ${
        new Date().toISOString().slice(0, 10)
      }.\n\n${header}${row}`
    )
  }
  await cleanup()
}

await main()
