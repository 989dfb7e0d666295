// How fast dev-consul wakes blocked watchers, and what each one costs.
//
// The server runs in this process (so its memory can be measured); the watchers and
// the writer run in a forked child (so client work does not distort server memory,
// and wake-up times are measured on one clock). For 1, 100 and 1000 watchers each
// doing a blocking GET ?recurse on one prefix, the child makes 30 PUTs under it and
// records, per watcher, the time from the PUT's start to that watcher's response.
// Baseline: a plain non-blocking GET round trip in the same setup.
//
//   node_modules/.bin/node bench/consul-watch.ts [--no-write]
//
// Appends the figures to docs/benchmarks.md under "## consul-watch" unless --no-write.

import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs"
import { Agent, request } from "node:http"
import { connect, type Socket } from "node:net"
import { cpus, loadavg } from "node:os"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { startDevConsul, tuneHeapForWatchers } from "../src/devconsul/server.ts"

const WATCHER_COUNTS = [1, 100, 1000]
const PUTS = 30
const BASELINE_GETS = 200
const TARGET_P99_MS = 50

type ToChild = { type: "run"; url: string; watchers: number } | { type: "listeners-ready" }
type FromChild =
  | { type: "need-listeners"; count: number }
  | { type: "registered" }
  | { type: "puts-starting" }
  | { type: "result"; wakeMs: number[]; baselineMs: number[] }

// ---- child: watchers and writer ----------------------------------------------------

function now(): number {
  return performance.now()
}

function httpGet(agent: Agent, url: string): Promise<{ index: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume()
      res.on("end", () => resolve({ index: Number(res.headers["x-consul-index"]) }))
    })
    req.on("error", reject)
    req.end()
  })
}

/**
 * One keep-alive connection speaking just enough HTTP/1.1 for a watcher: a request
 * line out, the status, X-Consul-Index and Content-Length in. A thousand watchers of a
 * real cluster run in a thousand processes; here they share one, and Node's full HTTP
 * client would make the reading of responses, not the server's wake-up, the figure.
 */
class RawConnection {
  readonly #socket: Socket
  #buffer: Buffer = Buffer.alloc(0)
  #pending: { resolve: (r: { index: number }) => void; reject: (e: Error) => void } | undefined

  constructor(host: string, port: number) {
    this.#socket = connect({ host, port, noDelay: true })
    this.#socket.on("data", (chunk: Buffer) => this.#onData(chunk))
    this.#socket.on("error", (e) => this.#pending?.reject(e))
  }

  get(path: string): Promise<{ index: number }> {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject }
      this.#socket.write(`GET ${path} HTTP/1.1\r\nHost: consul\r\n\r\n`)
    })
  }

  close(): void {
    this.#socket.destroy()
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    const end = this.#buffer.indexOf("\r\n\r\n")
    if (end === -1) return
    const head = this.#buffer.toString("latin1", 0, end)
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
    if (this.#buffer.length < end + 4 + length) return
    this.#buffer = this.#buffer.subarray(end + 4 + length)
    const pending = this.#pending
    this.#pending = undefined
    pending?.resolve({ index: Number(/\r\nx-consul-index: *(\d+)/i.exec(head)?.[1] ?? 0) })
  }
}

function httpPut(agent: Agent, url: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: "PUT" }, (res) => {
      res.resume()
      res.on("end", () => resolve())
    })
    req.on("error", reject)
    req.end(body)
  })
}

async function child(): Promise<void> {
  const send = (m: FromChild) => process.send?.(m)
  const waitParent = () =>
    new Promise<void>((resolve) => {
      const on = (m: ToChild) => {
        if (m.type === "listeners-ready") {
          process.off("message", on)
          resolve()
        }
      }
      process.on("message", on)
    })

  const run = await new Promise<{ url: string; watchers: number }>((resolve) =>
    process.once("message", (m: ToChild) => {
      if (m.type === "run") resolve(m)
    })
  )
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity })
  const prefix = `bench-${process.pid}`
  const treeUrl = `${run.url}/v1/kv/${prefix}/?recurse`
  await httpPut(agent, `${run.url}/v1/kv/${prefix}/seed`, "0")
  const start = await httpGet(agent, treeUrl)

  let putStartedAt = 0
  let stopping = false
  const wakeMs: number[] = []
  // Watchers re-subscribe only once every watcher has woken for this PUT: on one
  // machine, a thousand re-subscriptions issued mid-round would otherwise queue in
  // front of the responses still being read and be counted as wake-up latency.
  let round = Promise.withResolvers<void>()
  let wokenThisRound = 0
  let allWoken = Promise.withResolvers<void>()
  const { hostname, port } = new URL(run.url)
  const treePath = `/v1/kv/${prefix}/?recurse`
  const connections: RawConnection[] = []
  const watch = async (index: number): Promise<void> => {
    const conn = new RawConnection(hostname, Number(port))
    connections.push(conn)
    while (!stopping) {
      const r = await conn.get(`${treePath}&index=${index}&wait=60s`)
      if (stopping) return
      wakeMs.push(now() - putStartedAt)
      if (++wokenThisRound === run.watchers) allWoken.resolve()
      index = r.index
      await round.promise
    }
  }
  const watchers = Array.from({ length: run.watchers }, () => watch(start.index))

  const allBlocked = async () => {
    send({ type: "need-listeners", count: run.watchers })
    await waitParent()
  }
  await allBlocked()
  send({ type: "registered" })
  await waitParent() // parent measured memory

  const baselineMs: number[] = []
  const plain = new RawConnection(hostname, Number(port))
  for (let i = 0; i < BASELINE_GETS; i++) {
    const t0 = now()
    await plain.get(treePath)
    baselineMs.push(now() - t0)
  }
  plain.close()

  send({ type: "puts-starting" })
  for (let i = 1; i <= PUTS; i++) {
    await allBlocked()
    await new Promise((r) => setTimeout(r, 20))
    putStartedAt = now()
    await httpPut(agent, `${run.url}/v1/kv/${prefix}/k${i % 5}`, String(i))
    await allWoken.promise
    wokenThisRound = 0
    allWoken = Promise.withResolvers<void>()
    const done = round
    round = Promise.withResolvers<void>()
    done.resolve()
  }
  await allBlocked()
  stopping = true
  agent.destroy()
  for (const conn of connections) conn.close()
  await Promise.race([Promise.allSettled(watchers), new Promise((r) => setTimeout(r, 100))])
  // Exit only once the (large) result has left the IPC channel.
  process.send?.({ type: "result", wakeMs, baselineMs } satisfies FromChild, () => process.exit(0))
}

// ---- parent: server, measurement, report --------------------------------------------

interface Row {
  watchers: number
  wakes: number
  medianMs: number
  p99Ms: number
  baselineMs: number
  heapPerWatcherB: number
  rssPerWatcherB: number
  /** Server CPU (user + system) during the PUT rounds, per wake-up: independent of other load. */
  serverCpuPerWakeUs: number
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number
}

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

function memory(): { heap: number; rss: number } {
  gc()
  gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss }
}

async function measure(watchers: number): Promise<Row> {
  const dev = await startDevConsul({ port: 0 })
  const before = memory()
  const kid: ChildProcess = fork(fileURLToPath(import.meta.url), ["--child"], { stdio: "inherit" })
  let after = before
  let cpuAtPuts = process.cpuUsage()
  let serverCpuUs = 0
  const result = await new Promise<{ wakeMs: number[]; baselineMs: number[] }>((resolve, reject) => {
    kid.on("error", reject)
    kid.on("exit", (code) => reject(new Error(`watcher process exited (${code}) before sending its result`)))
    const whenListening = async (count: number) => {
      while (dev.store.listenerCount < count) await new Promise((r) => setTimeout(r, 1))
      kid.send({ type: "listeners-ready" } satisfies ToChild)
    }
    kid.on("message", (m: FromChild) => {
      if (m.type === "need-listeners") {
        whenListening(m.count).catch(reject)
      } else if (m.type === "registered") {
        after = memory()
        kid.send({ type: "listeners-ready" } satisfies ToChild)
      } else if (m.type === "puts-starting") {
        cpuAtPuts = process.cpuUsage()
      } else if (m.type === "result") {
        const cpu = process.cpuUsage(cpuAtPuts)
        serverCpuUs = cpu.user + cpu.system
        resolve(m)
      }
    })
    kid.send({ type: "run", url: dev.url, watchers } satisfies ToChild)
  })
  await new Promise<void>((resolve) => (kid.exitCode !== null ? resolve() : kid.once("exit", () => resolve())))
  await dev.close()

  const wakes = [...result.wakeMs].sort((a, b) => a - b)
  const base = [...result.baselineMs].sort((a, b) => a - b)
  return {
    watchers,
    wakes: wakes.length,
    medianMs: quantile(wakes, 0.5),
    p99Ms: quantile(wakes, 0.99),
    baselineMs: quantile(base, 0.5),
    heapPerWatcherB: (after.heap - before.heap) / watchers,
    rssPerWatcherB: (after.rss - before.rss) / watchers,
    serverCpuPerWakeUs: serverCpuUs / Math.max(1, wakes.length)
  }
}

function table(rows: Row[]): string {
  const head =
    "| watchers | wake-ups | wake median ms | wake p99 ms | plain GET median ms | median / GET | server CPU µs/wake | heap B/watcher | RSS B/watcher |"
  const sep = "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  const lines = rows.map(
    (r) =>
      `| ${r.watchers} | ${r.wakes} | ${r.medianMs.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.baselineMs.toFixed(2)} | ${
        (r.medianMs / r.baselineMs).toFixed(1)
      }x | ${Math.round(r.serverCpuPerWakeUs)} | ${Math.round(r.heapPerWatcherB)} | ${Math.round(r.rssPerWatcherB)} |`
  )
  return [head, sep, ...lines].join("\n")
}

async function parent(): Promise<void> {
  tuneHeapForWatchers() // as `sacar dev-consul` does
  const rows: Row[] = []
  for (const n of WATCHER_COUNTS) {
    process.stderr.write(`consul-watch: ${n} watchers...\n`)
    rows.push(await measure(n))
  }
  const t = table(rows)
  const worst = rows[rows.length - 1] as Row
  const verdict = `p99 at ${worst.watchers} watchers: ${worst.p99Ms.toFixed(1)} ms (target < ${TARGET_P99_MS} ms: ${
    worst.p99Ms < TARGET_P99_MS ? "met" : "NOT met"
  })`
  const load = `load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} CPUs during the run`
  process.stdout.write(`${t}\n\n${verdict}\n${load}\n`)

  if (!process.argv.includes("--no-write")) {
    const file = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
    const section = [
      "## consul-watch",
      "",
      `\`node_modules/.bin/node bench/consul-watch.ts\`, ${
        new Date().toISOString().slice(0, 16)
      }Z, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"}).`,
      `dev-consul in the bench process; watchers (blocking GET ?recurse on one prefix, keep-alive) and the writer in a child process; ${PUTS} PUTs per row.`,
      "Wake = PUT start to a watcher's response end; watchers re-subscribe once all have woken, so the figure is wake-up latency, not re-subscription throughput. Watchers read with a minimal HTTP/1.1 reader on raw sockets (in a cluster each is its own process; sharing one Node HTTP client would measure response parsing).",
      "Baseline = plain non-blocking GET round trip, same setup. Server CPU = the server process's user+system time during the PUT rounds per wake-up (it includes handling the re-subscription; least affected by other load).",
      "Memory = server-process delta after GC, divided by watchers (mostly Node's socket and HTTP objects per open request).",
      "With 1 watcher, the per-watcher memory and CPU figures are fixed costs (the bench's 1 ms polling for registered watchers, GC noise), not per-watcher costs.",
      "",
      t,
      "",
      verdict,
      `${load}.`,
      ""
    ].join("\n")
    if (!existsSync(file)) writeFileSync(file, `# Benchmarks\n\n${section}`)
    else {
      const old = readFileSync(file, "utf8")
      appendFileSync(file, `${old.endsWith("\n") ? "" : "\n"}\n${section}`)
    }
    process.stderr.write(`consul-watch: figures appended to ${file}\n`)
  }
}

if (process.argv.includes("--child")) await child()
else await parent()
