// The Consul a test talks to: the real one at CONSUL_HTTP_ADDR when set, else a
// `consul agent -dev` when the binary is on PATH, else a fresh in-process dev-consul.
// Tests use a random KV prefix each, so they never collide on a shared Consul.

import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { accessSync, constants } from "node:fs"
import { createServer } from "node:net"
import { delimiter, join } from "node:path"
import { startDevConsul } from "../../src/devconsul/server.ts"
import type { DevConsulOptions } from "../../src/devconsul/server.ts"
import { eventually } from "./eventually.ts"

export interface TestConsul {
  /** http://host:port, no trailing slash. */
  readonly addr: string
  /** true for a real Consul (CONSUL_HTTP_ADDR or a `consul agent -dev`). */
  readonly real: boolean
  close(): Promise<void>
}

/**
 * The node name of a real Consul's agent, by address: reconcilers started against it
 * create their sessions there (SACAR_CONSUL_NODE), since their made-up SACAR_NODE
 * names (web-1 ...) are not in its catalog and its leader reaps any such registration.
 */
const agentNodes = new Map<string, string>()
export const agentNodeOf = (addr: string): string | undefined => agentNodes.get(addr)

async function withAgentNode(consul: TestConsul): Promise<TestConsul> {
  const res = await fetch(`${consul.addr}/v1/agent/self`, {
    headers: process.env.CONSUL_HTTP_TOKEN ? { "X-Consul-Token": process.env.CONSUL_HTTP_TOKEN } : {}
  })
  const self = res.ok ? ((await res.json()) as { Config?: { NodeName?: string } }) : undefined
  if (self?.Config?.NodeName !== undefined) agentNodes.set(consul.addr, self.Config.NodeName)
  return consul
}

/**
 * `devConsul` configures the in-process dev-consul (ACLs, production paths); a real
 * Consul is used as it is, so tests that need those switch on `real` and skip.
 */
export async function startConsul(devConsul: Omit<DevConsulOptions, "host" | "port"> = {}): Promise<TestConsul> {
  const fromEnv = process.env.CONSUL_HTTP_ADDR
  if (fromEnv !== undefined && fromEnv !== "") {
    return withAgentNode({ addr: normaliseAddr(fromEnv), real: true, close: async () => {} })
  }
  const binary = findOnPath("consul")
  if (binary !== undefined) return withAgentNode(await startConsulAgent(binary))
  const dev = await startDevConsul({ ...devConsul, host: "127.0.0.1", port: 0 })
  return { addr: dev.url, real: false, close: () => dev.close() }
}

/** A KV prefix unique to one test, e.g. `t-3f9a0c21b7d4`. */
export function randomPrefix(): string {
  return `t-${randomBytes(6).toString("hex")}`
}

/** host and port of an addr from startConsul(), for `new Consul({ host, port })`. */
export function hostPort(addr: string): { host: string; port: number } {
  const u = new URL(addr)
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) }
}

function normaliseAddr(addr: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(addr) ? addr : `http://${addr}`
  return withScheme.replace(/\/+$/, "")
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

// `consul agent -dev` binds fixed ports; give every one a free port (or disable it)
// so test files can each run their own agent at the same time.
async function startConsulAgent(binary: string): Promise<TestConsul> {
  const [http, server, serfLan, serfWan] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const child = spawn(
    binary,
    [
      "agent",
      "-dev",
      "-bind=127.0.0.1",
      "-client=127.0.0.1",
      `-node=test-${randomBytes(4).toString("hex")}`,
      `-http-port=${http}`,
      `-server-port=${server}`,
      `-serf-lan-port=${serfLan}`,
      `-serf-wan-port=${serfWan}`,
      "-dns-port=-1",
      "-grpc-port=-1"
    ],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let output = ""
  child.stdout.on("data", (d: Buffer) => (output += d.toString()))
  child.stderr.on("data", (d: Buffer) => (output += d.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const addr = `http://127.0.0.1:${http}`
  const close = async () => {
    if (child.exitCode === null) child.kill("SIGTERM")
    await exited
  }

  const leader = async () => {
    const res = await fetch(`${addr}/v1/status/leader`)
    return res.ok && ((await res.json()) as string) !== ""
  }
  const exitedEarly = exited.then(() => Promise.reject(new Error(`consul agent -dev exited early:\n${output}`)))
  exitedEarly.catch(() => {}) // once it is up, an exit is close()'s doing
  try {
    await Promise.race([eventually("consul agent -dev to elect a leader", leader, 30_000, () => output), exitedEarly])
  } catch (error) {
    await close()
    throw error
  }
  return { addr, real: true, close }
}

/**
 * Registers made-up node names (web-1, node-1 ...) in Consul's catalog as a node's own
 * agent registers itself, with a passing serfHealth check: Sacar creates its sessions on
 * SACAR_NODE, and Consul refuses a session on a node its catalog lacks ("Missing node
 * registration") or bound to a check the node lacks. dev-consul accepts any node unless
 * RequireNodeRegistration is on; a real Consul always checks. Registering again is
 * harmless. On a real Consul the leader deregisters (reaps) such nodes at its next
 * reconcile (every 60 s) because no agent of that name is a serf member; see
 * docs/dev-consul.md.
 */
export async function registerConsulNodes(addr: string, nodes: ReadonlyArray<string>, token?: string): Promise<void> {
  for (const node of nodes) {
    const res = await fetch(`${addr}/v1/catalog/register`, {
      method: "PUT",
      headers: token === undefined ? {} : { "X-Consul-Token": token },
      body: JSON.stringify({
        Node: node,
        Address: "127.0.0.1",
        Check: { CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing" }
      })
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`registering node ${node} in Consul's catalog: ${res.status} ${text}`)
  }
}
