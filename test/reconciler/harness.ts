// End-to-end harness for the reconciler: real `sacar reconciler` child processes on a
// Consul from test/support/consul.ts, release tarballs written byte by byte (so hostile
// ones are as easy as good ones), KV written with plain HTTP as `consul kv put` does.
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { TestContext } from "node:test"
import { agentNodeOf, randomPrefix, registerConsulNodes, startConsul, type TestConsul } from "../support/consul.ts"
import { eventually } from "../support/eventually.ts"
import { Kv } from "../support/kv.ts"
import { nodePython, seedPipCache } from "../support/node-python.ts"
import { childEnv, SACAR_BIN } from "../support/sacar.ts"
import type { TarEntry } from "../support/tarballs.ts"
import { wheelBytes, wheelFilename, type WheelSpec } from "../support/wheels.ts"

// ------------------------------------------------------------------ releases

export const WHEELS: ReadonlyArray<WheelSpec> = [
  {
    name: "textcase",
    version: "1.0",
    modules: { "textcase/__init__.py": "def shout(s):\n    return s.upper() + '!'\n" }
  },
  {
    name: "greeting",
    version: "2.1",
    requires: ["textcase>=1.0"],
    modules: {
      "greeting/__init__.py": "from textcase import shout\n\ndef hello(name):\n    return shout('hello ' + name)\n"
    }
  }
]

export interface AppScripts {
  /** Shell bodies (after `#!/bin/sh\nset -e\n`); omitted: no such script. */
  readonly prepare?: string
  readonly preDeploy?: string
  readonly deploy?: string
}

/**
 * Entries of a well-formed release: the wheels, requirements, and the given scripts.
 * `requirements: false`: no requirements.txt and no wheels, so preparing it makes the
 * venv and never runs pip (for tests about what happens around the install).
 */
export const releaseEntries = (
  scripts: AppScripts,
  options: { pythonVersion?: string; wheels?: ReadonlyArray<WheelSpec>; requirements?: string | false } = {}
): TarEntry[] => {
  const wheels = options.wheels ?? WHEELS
  const script = (body: string): TarEntry["content"] => `#!/bin/sh\nset -e\n${body}\n`
  const entries: TarEntry[] = options.requirements === false
    ? [
      { name: "./", type: "dir" },
      { name: "./app.py", content: "print('hello world')\n" },
      { name: "./bin/", type: "dir" }
    ]
    : [
      { name: "./", type: "dir" },
      { name: "./wheels/", type: "dir" },
      ...wheels.map((w) => ({ name: `./wheels/${wheelFilename(w)}`, content: wheelBytes(w) })),
      { name: "./requirements.txt", content: options.requirements ?? "greeting==2.1\n" },
      { name: "./app.py", content: "from greeting import hello\nprint(hello('world'))\n" },
      { name: "./bin/", type: "dir" }
    ]
  if (scripts.prepare !== undefined)
    entries.push({ name: "./bin/prepare", content: script(scripts.prepare), mode: 0o755 })
  if (scripts.preDeploy !== undefined)
    entries.push({ name: "./bin/pre-deploy", content: script(scripts.preDeploy), mode: 0o755 })
  if (scripts.deploy !== undefined) entries.push({ name: "./bin/deploy", content: script(scripts.deploy), mode: 0o755 })
  if (options.pythonVersion !== undefined)
    entries.push({ name: "./python-version", content: `${options.pythonVersion}\n` })
  return entries
}

export const randomSha = () => randomBytes(20).toString("hex")

// ------------------------------------------------------------------ Consul

let shared: Promise<TestConsul> | undefined

/** One Consul per test file (each test uses its own prefix); closed after the file. */
export const consul = (): Promise<TestConsul> => (shared ??= startConsul())
export const closeConsul = async () => {
  if (shared !== undefined) await (await shared).close()
}

// ------------------------------------------------------------------ processes

export interface Reconciler {
  readonly node: string
  readonly root: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

export interface ReconcilerOptions {
  readonly addr: string
  readonly prefix: string
  readonly node: string
  readonly root: string
  readonly env?: Record<string, string>
  /**
   * A node that has never prepared a release: its root has no shared pip yet. By
   * default a new root starts as a node's does after its first release, with the
   * shared pip unpacked and compiled (test/support/node-python.ts).
   */
  readonly firstUse?: boolean
}

const python = await nodePython()

export const startReconciler = (t: TestContext | undefined, options: ReconcilerOptions): Reconciler => {
  // Its sessions are created on SACAR_CONSUL_NODE (default SACAR_NODE), which Consul must
  // have in its catalog. On a real Consul that is the agent's own node. On dev-consul the
  // made-up name is registered alongside the start (Node's start-up takes far longer than
  // this request; a reconciler that still loses the race retries its session): a failure
  // shows in the output, for a test whose Consul refuses it (ACLs) registers it itself.
  let output = ""
  if (options.firstUse !== true) seedPipCache(python, join(options.root, ".sacar", "pip"))
  const agentNode = agentNodeOf(options.addr)
  if (agentNode === undefined) {
    void registerConsulNodes(options.addr, [options.node], options.env?.["CONSUL_HTTP_TOKEN"]).catch(
      (error: unknown) => {
        output += `test harness: ${(error as Error).message}\n`
      }
    )
  }
  const child = spawn(process.execPath, [SACAR_BIN, "reconciler"], {
    env: childEnv({
      SACAR_NODE: options.node,
      SACAR_ROOT: options.root,
      SACAR_PREFIX: options.prefix,
      CONSUL_HTTP_ADDR: options.addr,
      SACAR_LOG_LEVEL: "info",
      ...(agentNode === undefined ? {} : { SACAR_CONSUL_NODE: agentNode }),
      // The test run's python3 and the system: not a developer's pyenv shims, each run at start-up.
      PATH: python.path,
      ...options.env
    }),
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d))
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null)))
  )
  const kill = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return exited
  }
  const reconciler = { node: options.node, root: options.root, child, output: () => output, exited, kill }
  if (t !== undefined) {
    const list = started.get(t) ?? []
    list.push(reconciler)
    started.set(t, list)
    t.after(() => kill("SIGKILL"))
  }
  return reconciler
}

/** Reconcilers per test, so a test's directories are removed only once they are gone. */
const started = new WeakMap<TestContext, Reconciler[]>()

export const tempDir = async (t: TestContext, label: string): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), `sacar-${label}-`))
  t.after(async () => {
    // Hooks run in the order they were added: end the test's reconcilers first, so none
    // is still writing into the directory while it is removed.
    await Promise.all((started.get(t) ?? []).map((r) => r.kill("SIGKILL")))
    await rm(dir, { recursive: true, force: true, maxRetries: 3 })
  })
  return dir
}

/** Generous: the e2e files run side by side on a small, shared machine. */
export const SETTLE_MS = 240_000
/** A whole e2e suite, whatever the runner's per-test default. */
export const SUITE_MS = 900_000

/** Waits until `node`'s status for `app` has release `sha` in a final phase. */
export const releaseSettled = (
  kv: Kv,
  app: string,
  node: string,
  sha: string,
  timeoutMs = SETTLE_MS,
  dump?: () => string
) =>
  eventually(
    `${node} to settle ${app} ${sha.slice(0, 7)}`,
    async () => {
      const s = await kv.status(app, node)
      const r = s?.releases?.[sha]
      return r !== undefined && (r.phase === "ready" || r.phase === "failed") ? r : undefined
    },
    timeoutMs,
    dump
  )

export const deploySettled = (
  kv: Kv,
  app: string,
  node: string,
  generation: number | undefined,
  timeoutMs = SETTLE_MS,
  dump?: () => string
) =>
  eventually(
    `${node} to settle the deploy of ${app}`,
    async () => {
      const s = await kv.status(app, node)
      const d = s?.deploy
      return d !== null && d !== undefined && (generation === undefined || d.generation === generation) &&
          (d.phase === "live" || d.phase === "failed")
        ? { ...d, current: s.current, previous: s.previous }
        : undefined
    },
    timeoutMs,
    dump
  )

/** A Kv on a fresh prefix of the file's Consul. */
export const freshKv = async (): Promise<Kv> => new Kv((await consul()).addr, randomPrefix())

export const appConfig = (artifact: string, extra: Record<string, unknown> = {}) => ({
  artifact,
  nodes: ["*"],
  ...extra
})

// ------------------------------------------------------------------ slow artifacts

/** Serves `file` over HTTP, dribbling it out slowly, to catch a reconciler mid-download. */
export const slowServer = async (
  t: TestContext,
  bytes: Buffer,
  bytesPerTick: number,
  tickMs: number
): Promise<{ url: string; requests: () => number }> => {
  let requests = 0
  const server: Server = createServer((req, res) => {
    requests += 1
    res.writeHead(200, { "content-length": String(bytes.length), "content-type": "application/gzip" })
    let offset = 0
    const timer = setInterval(() => {
      if (offset >= bytes.length) {
        clearInterval(timer)
        res.end()
        return
      }
      res.write(bytes.subarray(offset, offset + bytesPerTick))
      offset += bytesPerTick
    }, tickMs)
    res.on("close", () => clearInterval(timer))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  t.after(() =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  )
  const port = (server.address() as { port: number }).port
  return { url: `http://127.0.0.1:${port}/release.tgz`, requests: () => requests }
}
