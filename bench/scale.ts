// What Sacar costs Consul as the fleet grows: simulated nodes, each the reconciler's own
// loop (`runReconciler`: the same watches, reads, sessions, semaphore and status writes
// as `sacar reconciler`), with only the Python steps stubbed (test/support/python-stand-in.ts:
// the venv is made in-process, its `bin/python` is /bin/true; no requirements, no
// scripts), all against one dev-consul in a child process that counts what it serves.
// The fleet is split over a few child processes (a few hundred node-apps each), so both
// cores run nodes and no process starves its nodes' session renewals. Each run goes
// through one release and one deploy of every app.
//
//   node_modules/.bin/node bench/scale.ts [--runs=10,100,1000,100x50] [--fleets=N]
//     [--session-ttl-min=SECONDS] [--wave=NODE_APPS] [--apps-at-once=APPS] [--no-write]
//
// The controller's report loop (KV-only: no GitHub) runs in a process of its own against
// the same dev-consul, its requests told apart by the token it sends.
//
// Per run: requests and bytes Consul served per node, blocking queries held per node
// when idle, the fleet processes' and the controller's peak RSS and CPU, the controller's
// requests and CPU, dev-consul's CPU, and the time from the
// ReleaseSpec write to each node taking the release up (p50, p99, last: when the node
// sends the first status write that carries the release). Ratios against the first run, and the exponent of total bytes against nodes.
// A real `sacar reconciler` process is measured apart for its own RSS (bench/memory.ts).
// Appends to docs/benchmarks.md under "## scale" unless --no-write.

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import { execFileSync, fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import type { Server } from "node:http"
import type { Socket } from "node:net"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { ArtifactStore } from "../src/artifacts/store.ts"
import { Consul } from "../src/consul/consul.ts"
import { consulLayer } from "../src/consul/http.ts"
import { reportLoop } from "../src/controller/report/loop.ts"
import { startDevConsul, tuneHeapForWatchers } from "../src/devconsul/server.ts"
import { runReconciler } from "../src/reconciler/loop.ts"
import { makeKeys } from "../src/spec/keys.ts"
import { pythonStandInLayer } from "../test/support/python-stand-in.ts"

const HERE = fileURLToPath(import.meta.url)
const ROOT = join(HERE, "..", "..")
const PREFIX = "sacar"
const keys = makeKeys(PREFIX)
const SHA = "5ca1ab1e".repeat(5)
/** Released and deployed during warm-up: the measured release is an app's next one, not its first. */
const PREVIOUS = "0ddba11a".repeat(5)
/** The token the bench's controller sends (dev-consul runs without ACLs and ignores it): how its requests are counted apart. */
const CONTROLLER_TOKEN = "bench-controller"

// ---- child: dev-consul that counts what it serves ---------------------------------

type ToConsul = { type: "stats" } | { type: "reset" }
interface ConsulStats {
  readonly requests: number
  readonly bytes: number
  readonly cpuMs: number
  readonly rssMiB: number
  /** What the controller asked, within `requests` and `bytes`. */
  readonly controllerRequests?: number
  readonly controllerBytes?: number
  /** Request bodies the controller sent (its transactions' checks). */
  readonly controllerSentBytes?: number
  /** The biggest kinds of request: [kind, {requests, body bytes}]. */
  readonly byKind: ReadonlyArray<readonly [string, { readonly requests: number; readonly bytes: number }]>
  /** Connections open at dev-consul: now, and the most at once since the last reset (blocking queries and kept-alive idle sockets alike). */
  readonly connections: number
  readonly peakConnections: number
  /** Connections dev-consul closed at once because it was at `maxConnections` (see DEV_CONSUL_MAX_CONNECTIONS). */
  readonly dropped: number
}

async function consulHost(): Promise<void> {
  tuneHeapForWatchers()
  // Sessions end at twice their TTL without renewal, as in a production Consul (its
  // SessionTTLMultiplier): a simulated node starved of CPU renews late, a real one would not.
  const dev = await startDevConsul({ port: 0, nodeName: "bench", production: { sessionTtlMultiplier: 2 } })
  let requests = 0
  let closedBytes = 0
  const open = new Set<Socket>()
  let baseBytes = 0
  let baseCpu = process.cpuUsage()
  // dev-consul does not hand out its http.Server; it is this process's only listening handle.
  const handles = (process as unknown as { _getActiveHandles(): Array<unknown> })._getActiveHandles()
  const listener = handles.find((h) => (h as { listening?: boolean }).listening === true) as Server
  // Past this many sockets dev-consul closes new connections at once (the clients retry),
  // as an agent does past http_max_conns_per_client, instead of dying on EMFILE.
  listener.maxConnections = DEV_CONSUL_MAX_CONNECTIONS
  let dropped = 0
  listener.on("drop", () => {
    // Said as it happens: a run that stalls on refused connections shows it before it ends.
    if (dropped % 1000 === 0)
      console.error(`  dev-consul at ${DEV_CONSUL_MAX_CONNECTIONS} connections: refusing (${dropped + 1} so far)`)
    dropped++
  })
  let peakConnections = 0
  listener.on("connection", (socket: Socket) => {
    open.add(socket)
    peakConnections = Math.max(peakConnections, open.size)
    socket.on("close", () => {
      closedBytes += socket.bytesWritten
      open.delete(socket)
    })
  })
  // Body bytes by what was asked, to see where the traffic goes.
  const byKind = new Map<string, { requests: number; bytes: number }>()
  const kindOf = (url: string) => {
    const path = url.split("?")[0]!.replace(/^\/v1\/kv\/sacar\//, "kv/")
      .replace(/^kv\/app\d+\//, "kv/<app>/")
      .replace(/\/status\/[^/]+$/, "/status/<node>")
      .replace(/\/releases\/[0-9a-f]{40}$/, "/releases/<sha>")
      .replace(/\/locks\/deploy\/\d+\/[0-9a-f-]{36}$/, "/locks/deploy/<lane>/<session>")
      .replace(/\/locks\/deploy\/\d+\/tail$/, "/locks/deploy/<lane>/tail")
      .replace(/\/locks\/(predeploy|halt)\/\d+$/, "/locks/$1/<generation>")
      .replace(/^kv\/_nodes\/.+$/, "kv/_nodes/<node>")
      .replace(/^\/v1\/session\/(renew|info|destroy)\/.+$/, "/v1/session/$1/<id>")
    const blocking = /[?&]index=[1-9]/.test(url) ? " (blocking)" : ""
    return `${url.startsWith("/v1/kv") ? "" : ""}${path}${blocking}`
  }
  let controllerRequests = 0
  let controllerBytes = 0
  let controllerSentBytes = 0
  listener.on("request", (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
    requests++
    const fromController = req.headers["x-consul-token"] === CONTROLLER_TOKEN
    if (fromController) {
      controllerRequests++
      controllerSentBytes += Number(req.headers["content-length"] ?? 0)
    }
    const kind = kindOf(req.url ?? "")
    const write = res.write.bind(res)
    const end = res.end.bind(res)
    let bytes = 0
    const add = (chunk: unknown) => {
      if (typeof chunk === "string") bytes += Buffer.byteLength(chunk)
      else if (chunk instanceof Uint8Array) bytes += chunk.length
    }
    res.write = ((chunk: unknown, ...rest: Array<never>) => {
      add(chunk)
      return write(chunk as never, ...rest)
    }) as typeof res.write
    res.end = ((chunk?: unknown, ...rest: Array<never>) => {
      if (typeof chunk !== "function") add(chunk)
      return end(chunk as never, ...rest)
    }) as typeof res.end
    res.on("finish", () => {
      if (fromController) controllerBytes += bytes
      const k = byKind.get(kind) ?? { requests: 0, bytes: 0 }
      k.requests++
      k.bytes += bytes
      byKind.set(kind, k)
    })
  })
  const bytesNow = () => {
    let sum = closedBytes
    for (const s of open) sum += s.bytesWritten
    return sum
  }
  process.on("message", (msg: ToConsul) => {
    if (msg.type === "reset") {
      requests = 0
      controllerRequests = 0
      controllerBytes = 0
      controllerSentBytes = 0
      byKind.clear()
      baseBytes = bytesNow()
      baseCpu = process.cpuUsage()
      peakConnections = open.size
      dropped = 0
      process.send!({ type: "reset-done" })
    } else {
      const cpu = process.cpuUsage(baseCpu)
      const stats: ConsulStats = {
        requests,
        bytes: bytesNow() - baseBytes,
        cpuMs: (cpu.user + cpu.system) / 1000,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
        controllerRequests,
        controllerBytes,
        controllerSentBytes,
        byKind: [...byKind].sort((a, b) => b[1].bytes - a[1].bytes),
        connections: open.size,
        peakConnections,
        dropped
      }
      process.send!({ type: "stats", stats })
    }
  })
  process.send!({ type: "ready", url: dev.url })
}

// ---- child: the controller's report loop, KV-only ---------------------------------

async function controllerHost(url: string): Promise<void> {
  const consul = consulLayer({ address: url, tls: { verify: true }, token: Redacted.make(CONTROLLER_TOKEN) })
  const quiet = Layer.succeed(References.MinimumLogLevel, "Error")
  Effect.runFork(
    reportLoop({ keys, github: undefined, publicUrl: undefined, metrics: undefined }).pipe(
      Effect.provide(Layer.merge(consul, quiet))
    )
  )
  let base = process.cpuUsage()
  process.on("message", (msg: ToConsul) => {
    if (msg.type === "reset") {
      base = process.cpuUsage()
      process.send!({ type: "reset-done" })
    } else {
      const cpu = process.cpuUsage(base)
      process.send!({ type: "stats", cpuMs: (cpu.user + cpu.system) / 1000, peakMiB: peakRssMiB("self") })
    }
  })
  process.send!({ type: "ready" })
}

// ---- child: a share of the fleet ------------------------------------------------------

interface FleetConfig {
  readonly url: string
  /** The run's directory: node roots go under `nodes/`. */
  readonly dir: string
  /**
   * SACAR_SESSION_TTL_MIN for the nodes, or undefined for Sacar's own TTLs. On a machine
   * shared with other work a thousand nodes may not renew a 10 s session in time, and a
   * deploy slot lost halts the rollout (as it should); an operator of a large cluster
   * may raise session TTLs the same way.
   */
  readonly sessionTtlMinMs: number | undefined
}

/** What a node's status said, as it wrote it: the moment is the fleet's clock (one machine, one clock). */
type FleetEvent = "started" | "ready" | "live" | "warm"
type ToFleet = { type: "stats" } | { type: "stop" } | { type: "start"; nodes: ReadonlyArray<string> }
interface FleetStats {
  readonly blocking: number
  readonly cpuMs: number
  readonly peakMiB: number
}

async function fleetHost(config: FleetConfig): Promise<void> {
  const seen = new Set<string>()
  const tell = (what: FleetEvent, id: string) => {
    const key = `${what} ${id}`
    if (seen.has(key)) return
    seen.add(key)
    process.send!({ type: "event", what, id, at: Date.now() })
  }
  let blockingInFlight = 0
  const watchStatus = (node: string, key: string, value: string) => {
    const parsed = keys.parse(key)
    if (parsed.kind !== "status") return
    const doc = JSON.parse(value) as {
      releases?: Record<string, { phase: string }>
      deploy?: { phase: string; sha: string } | null
    }
    const release = doc.releases?.[SHA]
    const id = `${parsed.app}/${node}`
    // The node has taken the release up: it is in its status (pending while a slot is busy).
    if (release !== undefined) tell("started", id)
    if (release?.phase === "ready") tell("ready", id)
    if (doc.deploy?.sha === SHA && doc.deploy.phase === "live") tell("live", id)
    if (doc.deploy?.sha === PREVIOUS && doc.deploy.phase === "live") tell("warm", id)
  }
  const nodeConsul = (node: string): Layer.Layer<Consul> =>
    Layer.effect(
      Consul,
      Effect.gen(function*() {
        const c = yield* Consul
        const blocking = <A, E>(index: number | undefined, effect: Effect.Effect<A, E>) =>
          index === undefined || index === 0 ? effect : Effect.suspend(() => {
            blockingInFlight++
            return effect.pipe(Effect.ensuring(Effect.sync(() => blockingInFlight--)))
          })
        return Consul.of({
          ...c,
          get: (key, options) => blocking(options?.index, c.get(key, options)),
          list: (prefix, options) => blocking(options?.index, c.list(prefix, options)),
          put: (key, value, options) => {
            watchStatus(node, key, value)
            return c.put(key, value, options)
          }
        })
      })
    ).pipe(Layer.provide(consulLayer({
      address: config.url,
      tls: { verify: true },
      ...(config.sessionTtlMinMs === undefined ? {} : { sessionTtlMinMs: config.sessionTtlMinMs })
    })))

  // A thousand nodes logging would measure the terminal; errors still show.
  const quiet = Layer.succeed(References.MinimumLogLevel, "Error")
  const scope = Effect.runSync(Scope.make())
  const fibers: Array<Fiber.Fiber<never, never>> = []
  let base = process.cpuUsage()
  process.on("message", (msg: ToFleet) => {
    if (msg.type === "stats") {
      const cpu = process.cpuUsage(base)
      base = process.cpuUsage()
      const stats: FleetStats = {
        blocking: blockingInFlight,
        cpuMs: (cpu.user + cpu.system) / 1000,
        peakMiB: peakRssMiB("self")
      }
      process.send!({ type: "stats", stats })
    } else if (msg.type === "stop") {
      void Effect.runPromise(Scope.close(scope, Exit.void).pipe(Effect.andThen(Fiber.interruptAll(fibers)))).then(
        () => process.exit(0)
      )
    }
  })
  // Nodes start when the main process says so, a wave at a time (see `warmUp`).
  const start = async (nodes: ReadonlyArray<string>) => {
    for (const node of nodes) {
      const root = join(config.dir, "nodes", node)
      mkdirSync(root, { recursive: true })
      fibers.push(Effect.runFork(
        runReconciler({ settings: { node, consulNode: node, root, concurrency: 2, python: "3.12", prefix: PREFIX } })
          .pipe(
            Effect.provide(Layer.mergeAll(nodeConsul(node), ArtifactStore.layer, pythonStandInLayer, quiet)),
            Scope.provide(scope)
          )
      ))
      // Start-up in small steps, as a fleet does; a thousand at once is a thundering herd of its own.
      if (fibers.length % 25 === 0) await sleep(50)
    }
  }
  process.on("message", (msg: ToFleet) => {
    if (msg.type === "start") void start(msg.nodes).then(() => process.send!({ type: "started" }))
  })
  process.send!({ type: "ready" })
}

// ---- main: the fleet ----------------------------------------------------------------

interface Run {
  readonly nodes: number
  readonly apps: number
}

interface RunResult extends Run {
  readonly fleets: number
  readonly requestsPerNode: number
  readonly bytesPerNode: number
  readonly totalBytes: number
  readonly blockingPerNode: number
  /** The largest fleet process's peak RSS, and their sum. */
  readonly fleetPeakMiB: number
  readonly fleetPeakSumMiB: number
  /** The fleet processes' CPU over the measured release and deploy. */
  readonly fleetCpuMs: number
  readonly consulCpuMs: number
  readonly controllerRequests: number
  readonly controllerKiB: number
  readonly controllerSentKiB: number
  readonly controllerCpuMs: number
  readonly controllerPeakMiB: number
  readonly startedP50: number
  readonly startedP99: number
  readonly startedMax: number
  readonly releaseMs: number
  readonly deployMs: number
  readonly loadAverage: string
  readonly byKind: ConsulStats["byKind"]
  readonly idle: IdleCost
  /** CPU seconds from the ReleaseSpec write to the last node taking it up. */
  readonly takeUpCpu: { readonly fleets: number; readonly consul: number }
  /** Apps whose ReleaseSpec (then DeploySpec) were written together, each group finished before the next. */
  readonly appsAtOnce: number
  /** Connections open at dev-consul per node (the controller's few included): at the end of the idle window, and the most at once during the release and deploy. */
  readonly idleConnectionsPerNode: number
  readonly peakConnectionsPerNode: number
  /** Connections dev-consul refused, at its cap, during the idle window and the measured part. */
  readonly dropped: number
}

/** The warm fleet with nothing to do, per node and second. */
interface IdleCost {
  readonly requestsPerNodeSecond: number
  readonly bytesPerNodeSecond: number
  readonly fleetCpuMsPerNodeSecond: number
  readonly consulCpuMsPerSecond: number
  readonly controllerCpuMsPerSecond: number
  readonly byKind: ConsulStats["byKind"]
}

/**
 * This machine's hard limit of open files is 20 000 per process and cannot be raised
 * here; dev-consul holds every node's connections. A margin is left for its own files.
 */
const DEV_CONSUL_MAX_CONNECTIONS = 19_500

/** Long enough for every periodic request: renewals (7.5 s), the app listing (10 s), the resync pass (15 s). */
const IDLE_MS = 20_000

let warnedNoFiles = false
/** The main process's scratch directory, removed also when the bench is stopped by a signal. */
let workDir: string | undefined
/** Every child of the main process: a bench stopped with SIGTERM or ^C leaves none behind. */
const children = new Set<ChildProcess>()
const forkChild = (args: ReadonlyArray<string>): ChildProcess => {
  const child = fork(HERE, [...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  children.add(child)
  // 100 nodes x 50 apps hold 20 000 blocking queries, one socket each, all on dev-consul:
  // more than this machine's default limit of open files. Raised where allowed (root).
  try {
    execFileSync("prlimit", [`--pid=${child.pid}`, "--nofile=65536:65536"], { stdio: "ignore" })
  } catch {
    // Not allowed (no CAP_SYS_RESOURCE): 100 x 50 then runs out of files in dev-consul.
    if (!warnedNoFiles) console.error(`prlimit refused: children keep this machine's limit of open files`)
    warnedNoFiles = true
  }
  child.once("exit", () => children.delete(child))
  return child
}

const ask = <T>(child: ChildProcess, msg: ToConsul | ToFleet, reply: string): Promise<T> =>
  new Promise((resolve) => {
    const on = (m: { type: string } & T) => {
      if (m.type !== reply) return
      child.off("message", on)
      resolve(m)
    }
    child.on("message", on)
    child.send(msg)
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** CPU seconds a process has had (utime + stime, /proc/<pid>/stat), for progress lines. */
const cpuSecondsOf = (pid: number | undefined): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}

async function waitFor(
  check: () => boolean,
  ms: number,
  what: string,
  progress: () => string = () => ""
): Promise<void> {
  const started = Date.now()
  const deadline = started + ms
  let next = started + 30_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${progress()}`)
    if (Date.now() > next) {
      // A long run says where it is: how far, and how much CPU each process has had.
      next += 30_000
      console.error(
        `  ${Math.round((Date.now() - started) / 1000)} s waiting for ${what}: ${progress()}; load ${
          loadavg()[0]!.toFixed(1)
        }`
      )
    }
    await sleep(50)
  }
}

const peakRssMiB = (pid: number | "self"): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? "0") / 1024
}

/** Node-apps per fleet process: a few hundred keep a share of a core ahead of its nodes' renewals. */
const NODE_APPS_PER_FLEET = 300
const MAX_FLEETS = 4

const fleetCount = (run: Run, forced: number | undefined) =>
  forced ?? Math.min(MAX_FLEETS, Math.max(1, Math.ceil((run.nodes * run.apps) / NODE_APPS_PER_FLEET)))

async function runOnce(
  consulUrl: string,
  consulChild: ChildProcess,
  controller: ChildProcess,
  run: Run,
  work: string,
  forcedFleets: number | undefined,
  sessionTtlMinMs: number | undefined,
  waveNodeApps: number,
  appsAtOnce: number
): Promise<RunResult> {
  const appNames = Array.from({ length: run.apps }, (_, i) => `app${i}`)
  const nodeNames = Array.from({ length: run.nodes }, (_, i) => `node-${i}`)
  const dir = mkdtempSync(join(work, `run-${run.nodes}x${run.apps}-`))
  const artifacts = join(dir, "artifacts")
  mkdirSync(join(artifacts, "src"), { recursive: true })
  writeFileSync(join(artifacts, "src", "app.py"), "print('hello')\n")
  execFileSync("tar", ["czf", join(artifacts, `${SHA}.tgz`), "-C", join(artifacts, "src"), "."])
  execFileSync("tar", ["czf", join(artifacts, `${PREVIOUS}.tgz`), "-C", join(artifacts, "src"), "."])

  const admin = consulLayer({ address: consulUrl, tls: { verify: true } })
  const put = (key: string, value: unknown) =>
    Effect.runPromise(Consul.use((c) => c.put(key, JSON.stringify(value))).pipe(Effect.provide(admin)))

  const maxParallel = Math.max(1, Math.floor(run.nodes / 10))
  for (const app of appNames) {
    await put(keys.config(app), {
      artifact: `file://${artifacts}/{sha}.tgz`,
      nodes: ["node-*"],
      maxParallel,
      deployTimeout: "60s"
    })
    await put(keys.release(app, PREVIOUS), { createdAt: new Date(Date.now() - 60_000).toISOString() })
    await put(keys.deploy(app), { sha: PREVIOUS, requestedBy: "bench warm-up" })
  }

  // What each node's status says, as its fleet process saw it written.
  const events: Record<FleetEvent, Map<string, number>> = {
    started: new Map(),
    ready: new Map(),
    live: new Map(),
    warm: new Map()
  }
  const count = fleetCount(run, forcedFleets)
  const fleets: Array<ChildProcess> = []
  try {
    for (let f = 0; f < count; f++) {
      const config: FleetConfig = {
        url: consulUrl,
        dir,
        sessionTtlMinMs
      }
      const child = forkChild(["--fleet-host", JSON.stringify(config)])
      child.on("message", (m: { type: string; what?: FleetEvent; id?: string; at?: number }) => {
        if (m.type === "event" && m.what !== undefined) events[m.what].set(m.id!, m.at!)
      })
      await new Promise((resolve) => child.once("message", resolve))
      fleets.push(child)
    }
    const everyStatus = run.nodes * run.apps
    const progress = () =>
      `warm ${events.warm.size}, started ${events.started.size}, ready ${events.ready.size}, live ${events.live.size} of ${everyStatus}; CPU s: fleets ${
        fleets.map((f) => cpuSecondsOf(f.pid).toFixed(0)).join("/")
      }, dev-consul ${cpuSecondsOf(consulChild.pid).toFixed(0)}, controller ${cpuSecondsOf(controller.pid).toFixed(0)}`
    // Warm-up, not measured: every node serves every app with the previous release live,
    // as in a running cluster. The nodes start in waves of about `waveNodeApps`
    // node-apps, each wave prepared and deployed before the next starts: a whole fleet
    // preparing and deploying its first release at once is not what the bench measures,
    // and on one machine it starves the first deploys' session renewals.
    const perWave = Math.max(1, Math.floor(waveNodeApps / run.apps))
    for (let from = 0; from < run.nodes; from += perWave) {
      const wave = nodeNames.slice(from, from + perWave)
      await Promise.all(
        fleets.map((fleet, f) =>
          ask(fleet, { type: "start", nodes: wave.filter((_, i) => (from + i) % count === f) }, "started")
        )
      )
      await waitFor(
        () => events.warm.size >= Math.min(run.nodes, from + perWave) * run.apps,
        30 * 60_000,
        `the warm-up deploy on nodes ${from}-${from + wave.length - 1}`,
        progress
      )
    }
    await sleep(5_000) // let start-up settle, and the watches' token buckets refill

    // Idle: what the warm fleet costs per second with nothing to do (session renewals,
    // the app listing, the resync pass, blocking queries that time out).
    await ask(consulChild, { type: "reset" }, "reset-done")
    await ask(controller, { type: "reset" }, "reset-done")
    for (const fleet of fleets) await ask(fleet, { type: "stats" }, "stats")
    const idleStarted = Date.now()
    await sleep(IDLE_MS)
    const idleSeconds = (Date.now() - idleStarted) / 1000
    const idle = (await ask<{ stats: ConsulStats }>(consulChild, { type: "stats" }, "stats")).stats
    const idleFleetMs = (await Promise.all(
      fleets.map((fleet) => ask<{ stats: FleetStats }>(fleet, { type: "stats" }, "stats"))
    )).reduce((sum, r) => sum + r.stats.cpuMs, 0)
    const idleCtl = await ask<{ cpuMs: number }>(controller, { type: "stats" }, "stats")
    const idleCost: IdleCost = {
      requestsPerNodeSecond: (idle.requests - (idle.controllerRequests ?? 0)) / run.nodes / idleSeconds,
      bytesPerNodeSecond: (idle.bytes - (idle.controllerBytes ?? 0)) / run.nodes / idleSeconds,
      fleetCpuMsPerNodeSecond: idleFleetMs / run.nodes / idleSeconds,
      consulCpuMsPerSecond: idle.cpuMs / idleSeconds,
      controllerCpuMsPerSecond: idleCtl.cpuMs / idleSeconds,
      byKind: idle.byKind
    }
    console.error(
      `  idle ${idleSeconds.toFixed(0)} s: per node and second ${idleCost.requestsPerNodeSecond.toFixed(2)} requests, ${
        idleCost.bytesPerNodeSecond.toFixed(0)
      } B, ${idleCost.fleetCpuMsPerNodeSecond.toFixed(2)} ms of fleet CPU; dev-consul ${
        idleCost.consulCpuMsPerSecond.toFixed(0)
      } ms CPU/s, controller ${idleCost.controllerCpuMsPerSecond.toFixed(0)} ms CPU/s`
    )
    for (const [kind, k] of idle.byKind) {
      console.error(`    idle ${kind}: ${(k.requests / run.nodes / idleSeconds).toFixed(3)} requests/s per node`)
    }
    await ask(consulChild, { type: "reset" }, "reset-done")
    await ask(controller, { type: "reset" }, "reset-done")
    for (const fleet of fleets) await ask(fleet, { type: "stats" }, "stats")

    // One release of every app, `appsAtOnce` apps at a time (each group ready before the
    // next is written; all at once unless --apps-at-once).
    const groups: Array<ReadonlyArray<string>> = []
    for (let i = 0; i < appNames.length; i += appsAtOnce) groups.push(appNames.slice(i, i + appsAtOnce))
    const doneIn = (events: Map<string, number>, group: ReadonlyArray<string>) => {
      const apps = new Set(group)
      let n = 0
      for (const id of events.keys()) if (apps.has(id.slice(0, id.indexOf("/")))) n++
      return n >= group.length * run.nodes
    }
    const fleetCpuSeconds = () => fleets.reduce((sum, f) => sum + cpuSecondsOf(f.pid), 0)
    const cpuAtWrite = { fleets: fleetCpuSeconds(), consul: cpuSecondsOf(consulChild.pid) }
    const t0 = Date.now()
    /** When each app's ReleaseSpec was written: a node's take-up is timed from its app's write. */
    const releasedAt = new Map<string, number>()
    let takeUpCpu: { fleets: number; consul: number } | undefined
    for (const group of groups) {
      for (const app of group) {
        releasedAt.set(app, Date.now())
        await put(keys.release(app, SHA), { createdAt: new Date().toISOString() })
      }
      await waitFor(() => doneIn(events.started, group), 20 * 60_000, "every node taking the release up", progress)
      // Where the time to the last take-up goes: the CPU the fleet and dev-consul had for it (first group).
      takeUpCpu ??= {
        fleets: fleetCpuSeconds() - cpuAtWrite.fleets,
        consul: cpuSecondsOf(consulChild.pid) - cpuAtWrite.consul
      }
      await waitFor(() => doneIn(events.ready, group), 20 * 60_000, "every node ready", progress)
    }
    const releaseMs = Date.now() - t0
    const latencies = [...events.started].map(([id, t]) => t - releasedAt.get(id.slice(0, id.indexOf("/")))!)
      .sort((a, b) => a - b)
    // Said before the deploy: a deploy that halts still leaves the release's figures.
    console.error(
      `  release: taken up p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, last ${
        latencies.at(-1)
      } ms; all ready in ${(releaseMs / 1000).toFixed(1)} s`
    )

    // One deploy of every app, in the same groups.
    const t1 = Date.now()
    for (const group of groups) {
      for (const app of group) await put(keys.deploy(app), { sha: SHA, requestedBy: "bench" })
      await waitFor(() => doneIn(events.live, group), 30 * 60_000, "every node live", progress)
    }
    const deployMs = Date.now() - t1
    await sleep(3_000) // trailing writes count too
    const { stats } = await ask<{ stats: ConsulStats }>(consulChild, { type: "stats" }, "stats")
    const ctl = await ask<{ cpuMs: number; peakMiB: number }>(controller, { type: "stats" }, "stats")
    const fleetStats: Array<FleetStats> = []
    for (const fleet of fleets)
      fleetStats.push((await ask<{ stats: FleetStats }>(fleet, { type: "stats" }, "stats")).stats)
    return {
      ...run,
      fleets: count,
      // The nodes' own traffic; the controller's is reported apart.
      requestsPerNode: (stats.requests - (stats.controllerRequests ?? 0)) / run.nodes,
      bytesPerNode: (stats.bytes - (stats.controllerBytes ?? 0)) / run.nodes,
      totalBytes: stats.bytes - (stats.controllerBytes ?? 0),
      blockingPerNode: fleetStats.reduce((sum, f) => sum + f.blocking, 0) / run.nodes,
      fleetPeakMiB: Math.max(...fleetStats.map((f) => f.peakMiB)),
      fleetPeakSumMiB: fleetStats.reduce((sum, f) => sum + f.peakMiB, 0),
      fleetCpuMs: fleetStats.reduce((sum, f) => sum + f.cpuMs, 0),
      consulCpuMs: stats.cpuMs,
      controllerRequests: stats.controllerRequests ?? NaN,
      controllerKiB: (stats.controllerBytes ?? NaN) / 1024,
      controllerSentKiB: (stats.controllerSentBytes ?? NaN) / 1024,
      controllerCpuMs: ctl.cpuMs,
      controllerPeakMiB: ctl.peakMiB,
      startedP50: percentile(latencies, 50),
      startedP99: percentile(latencies, 99),
      startedMax: latencies.at(-1) ?? NaN,
      releaseMs,
      deployMs,
      loadAverage: loadavg().map((l) => l.toFixed(1)).join(" "),
      byKind: stats.byKind,
      idle: idleCost,
      takeUpCpu: takeUpCpu!,
      appsAtOnce: Math.min(appsAtOnce, run.apps),
      idleConnectionsPerNode: idle.connections / run.nodes,
      peakConnectionsPerNode: stats.peakConnections / run.nodes,
      dropped: stats.dropped + idle.dropped
    }
  } finally {
    await Promise.all(fleets.map((fleet) =>
      new Promise<void>((resolve) => {
        if (fleet.exitCode !== null || fleet.signalCode !== null) return resolve()
        const kill = setTimeout(() => fleet.kill("SIGKILL"), 30_000)
        fleet.once("exit", () => {
          clearTimeout(kill)
          resolve()
        })
        fleet.send({ type: "stop" } satisfies ToFleet)
      })
    ))
    rmSync(dir, { recursive: true, force: true })
  }
}

const row = (r: RunResult, base: RunResult) =>
  `| ${r.nodes} x ${r.apps} | ${r.requestsPerNode.toFixed(1)} | ${fmtBytes(r.bytesPerNode)} | ${
    (r.bytesPerNode / base.bytesPerNode).toFixed(2)
  } | ${r.blockingPerNode.toFixed(1)} | ${r.idleConnectionsPerNode.toFixed(1)} / ${
    r.peakConnectionsPerNode.toFixed(1)
  }${
    r.dropped > 0 ? ` (${r.dropped} refused)` : ""
  } | ${r.appsAtOnce} | ${r.startedP50} / ${r.startedP99} / ${r.startedMax} ms (CPU meanwhile: fleets ${
    r.takeUpCpu.fleets.toFixed(1)
  } s, dev-consul ${r.takeUpCpu.consul.toFixed(1)} s) | ${(r.releaseMs / 1000).toFixed(1)} s | ${
    (r.deployMs / 1000).toFixed(1)
  } s | ${r.fleets}: ${r.fleetPeakMiB.toFixed(0)} MiB (sum ${r.fleetPeakSumMiB.toFixed(0)}), ${
    (r.fleetCpuMs / 1000).toFixed(1)
  } s CPU | ${(r.consulCpuMs / 1000).toFixed(1)} s | ${r.controllerRequests} req, ${
    r.controllerKiB.toFixed(0)
  } KiB (sent ${r.controllerSentKiB.toFixed(0)} KiB), ${(r.controllerCpuMs / 1000).toFixed(1)} s CPU, ${
    r.controllerPeakMiB.toFixed(0)
  } MiB | ${r.idle.requestsPerNodeSecond.toFixed(2)} req, ${r.idle.bytesPerNodeSecond.toFixed(0)} B, ${
    r.idle.fleetCpuMsPerNodeSecond.toFixed(2)
  } ms CPU; dev-consul ${r.idle.consulCpuMsPerSecond.toFixed(0)} ms/s | ${r.loadAverage} |`

const HEADER = [
  "| nodes x apps | requests/node | bytes/node | x first run | blocking queries/node (idle) | connections/node at dev-consul: idle / peak | apps written at once | ReleaseSpec -> in the node's status, p50 / p99 / last | all ready | all live | fleet processes: peak RSS of the largest (sum), CPU | dev-consul CPU | controller: requests, response bytes (request bodies), CPU, peak RSS | idle, per node and second: requests, bytes, fleet CPU; dev-consul CPU | load average at the end |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
]

const fmtBytes = (n: number) => n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`

async function main(): Promise<void> {
  const runsArg = process.argv.find((a) => a.startsWith("--runs="))?.slice("--runs=".length) ?? "10,100,1000,100x50"
  const runs: Run[] = runsArg.split(",").map((r) => {
    const [nodes, apps] = r.split("x")
    return { nodes: Number(nodes), apps: Number(apps ?? "1") }
  })
  const write = !process.argv.includes("--no-write")
  const fleetsArg = process.argv.find((a) => a.startsWith("--fleets="))?.slice("--fleets=".length)
  const forcedFleets = fleetsArg === undefined ? undefined : Number(fleetsArg)
  const ttlArg = process.argv.find((a) => a.startsWith("--session-ttl-min="))?.slice("--session-ttl-min=".length)
  const sessionTtlMinMs = ttlArg === undefined ? undefined : Number(ttlArg) * 1000
  const waveArg = process.argv.find((a) => a.startsWith("--wave="))?.slice("--wave=".length)
  const waveNodeApps = waveArg === undefined ? 200 : Number(waveArg)
  const atOnceArg = process.argv.find((a) => a.startsWith("--apps-at-once="))?.slice("--apps-at-once=".length)
  const appsAtOnce = atOnceArg === undefined ? Number.POSITIVE_INFINITY : Number(atOnceArg)
  const work = mkdtempSync(join(tmpdir(), "sacar-scale-"))
  workDir = work
  const results: RunResult[] = []
  try {
    for (const run of runs) {
      // A fresh dev-consul per run: nothing of the previous run's KV or watchers.
      const consulChild = forkChild(["--consul-host"])
      const { url } = await new Promise<{ url: string }>((resolve) =>
        consulChild.once("message", (m) => resolve(m as { url: string }))
      )
      const controller = forkChild(["--controller-host", url])
      await new Promise((resolve) => controller.once("message", resolve))
      try {
        const started = Date.now()
        const result = await runOnce(
          url,
          consulChild,
          controller,
          run,
          work,
          forcedFleets,
          sessionTtlMinMs,
          waveNodeApps,
          appsAtOnce
        )
        results.push(result)
        console.error(
          `${run.nodes} nodes x ${run.apps} apps: ${result.requestsPerNode.toFixed(1)} requests and ${
            fmtBytes(result.bytesPerNode)
          } per node; started p50 ${result.startedP50} ms p99 ${result.startedP99} ms (${
            Math.round((Date.now() - started) / 1000)
          } s)`
        )
        // Each row as soon as it is measured: a long run stopped half-way still says something.
        console.error(`row: ${row(result, results[0]!)}`)
        for (const [kind, k] of result.byKind) {
          console.error(
            `    ${kind}: ${(k.requests / run.nodes).toFixed(1)} requests, ${fmtBytes(k.bytes / run.nodes)} per node`
          )
        }
      } finally {
        controller.kill("SIGUSR2")
        consulChild.kill("SIGUSR2")
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  report(results, write)
  process.exit(0)
}

function report(results: ReadonlyArray<RunResult>, write: boolean) {
  const base = results[0]!
  const single = results.filter((r) => r.apps === 1)
  // Least squares of log(total bytes) on log(nodes), over the one-app runs.
  let exponent = NaN
  if (single.length >= 2) {
    const xs = single.map((r) => Math.log(r.nodes))
    const ys = single.map((r) => Math.log(r.totalBytes))
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length
    const my = ys.reduce((a, b) => a + b, 0) / ys.length
    let num = 0
    let den = 0
    for (let i = 0; i < xs.length; i++) {
      num += (xs[i]! - mx) * (ys[i]! - my)
      den += (xs[i]! - mx) ** 2
    }
    exponent = num / den
  }
  const lines = [
    "",
    "## scale",
    "",
    `Run ${new Date().toISOString()} on ${cpus().length} cores, load average ${
      loadavg().map((l) => l.toFixed(1)).join(" ")
    } (a machine shared with other work). \`node_modules/.bin/node bench/scale.ts\`.`,
    "Simulated nodes are `runReconciler` in child processes (a few hundred node-apps each) with the Python steps stubbed in-process. Warm-up (not counted): each app's previous release is prepared and deployed everywhere. Measured: the next release and its deploy, on every node (maxParallel = nodes/10), until 3 s after the last node is live; with several apps, the ReleaseSpecs (then the DeploySpecs) of `apps written at once` apps together, each group finished before the next, and each take-up timed from its own app's write.",
    "",
    ...HEADER,
    ...results.map((r) => row(r, base)),
    "",
    `Exponent of total bytes served against nodes (one app): ${exponent.toFixed(2)} (1.00 is linear).`,
    "A real reconciler's own memory: bench/memory.ts.",
    ""
  ]
  const text = lines.join("\n")
  console.log(text)
  if (write) appendFileSync(join(ROOT, "docs", "benchmarks.md"), text)
}

// SIGUSR2 ends a process cleanly, so `--cpu-prof` writes its profile for a run stopped half-way.
process.on("SIGUSR2", () => process.exit(130))
const controllerAt = process.argv.indexOf("--controller-host")
const fleetAt = process.argv.indexOf("--fleet-host")
if (process.argv.includes("--consul-host")) await consulHost()
else if (controllerAt >= 0) await controllerHost(process.argv[controllerAt + 1]!)
else if (fleetAt >= 0) await fleetHost(JSON.parse(process.argv[fleetAt + 1]!) as FleetConfig)
else {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      for (const child of children) child.kill("SIGKILL")
      // process.exit skips main's `finally`: a stopped run's node roots (hundreds of MiB at 100 x 50) go too.
      if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true })
      process.exit(130)
    })
  }
  await main()
}
