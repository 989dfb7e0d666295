/**
 * Sacar's own processes as the demo runs them: `sacar controller` and one
 * `sacar reconciler` per node, each the real command on the project's Node, with
 * only the environment a real deployment would set.
 */
import { open } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import type { Child, Supervisor } from "./processes.ts"
import { describeExit } from "./processes.ts"

export const SACAR_BIN = fileURLToPath(new URL("../../bin/sacar.ts", import.meta.url))

export interface ComponentEnv {
  /** The Consul address as children should see it (http://host:port). */
  readonly consul: string
  readonly prefix: string
  /** The demo's own environment, passed on (PATH, CONSUL_HTTP_TOKEN, SACAR_PYTHON ...). */
  readonly base: NodeJS.ProcessEnv
  /**
   * A real Consul's agent node: the demo's three made-up nodes share one agent, whose
   * catalog has only its own node, so their sessions are created there.
   */
  readonly consulNode?: string | undefined
}

/**
 * Our environment minus what must not leak into a component: node:test's
 * NODE_TEST_CONTEXT (a child Node that inherits it acts as a test worker and never
 * exits normally), the settings the demo sets per component, and GitHub settings: a
 * developer's GITHUB_TOKEN must not turn the demo's controller into a real reporter.
 */
const componentEnv = (env: ComponentEnv, extra: Record<string, string>): NodeJS.ProcessEnv => {
  const out: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(env.base)) {
    if (
      k === "NODE_TEST_CONTEXT" || k === "SACAR_LISTEN" || k === "SACAR_NODE" || k === "SACAR_ROOT" ||
      k === "SACAR_CONSUL_NODE" ||
      k.startsWith("GITHUB_")
    ) continue
    out[k] = v
  }
  return {
    ...out,
    CONSUL_HTTP_ADDR: env.consul,
    SACAR_PREFIX: env.prefix,
    // JSON lines in the log files: one event per line, greppable by app, sha, node, step.
    SACAR_LOG_FORMAT: "json",
    ...extra
  }
}

export const startReconciler = (
  supervisor: Supervisor,
  env: ComponentEnv,
  node: string,
  root: string,
  logFile: string
): Promise<Child> =>
  supervisor.start({
    name: node,
    command: process.execPath,
    args: [SACAR_BIN, "reconciler"],
    env: componentEnv(env, {
      SACAR_NODE: node,
      SACAR_ROOT: root,
      ...(env.consulNode === undefined ? {} : { SACAR_CONSUL_NODE: env.consulNode })
    }),
    logFile
  })

export const startController = (supervisor: Supervisor, env: ComponentEnv, logFile: string): Promise<Child> =>
  supervisor.start({
    name: "controller",
    command: process.execPath,
    args: [SACAR_BIN, "controller"],
    env: componentEnv(env, { SACAR_LISTEN: "127.0.0.1:0" }),
    logFile
  })

/** The controller logs `listening on <url>` once its port is bound. */
const LISTENING = /"msg":"listening on (http:\/\/[^"\s]+)"|listening on (http:\/\/\S+)/

/** Reads the controller's log until it says where it listens; fails if it exits first. */
export async function controllerUrl(child: Child, timeoutMs: number, signal: AbortSignal): Promise<string> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    signal.throwIfAborted()
    const text = await readText(child.logFile)
    const match = LISTENING.exec(text)
    if (match) return (match[1] ?? match[2])!
    const exit = child.exit()
    if (exit !== undefined)
      throw new Error(`the controller ${describeExit(exit)} before listening:\n${lastLines(text, 15)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(
    `the controller did not report its address within ${Math.round(timeoutMs / 1000)} s; see ${child.logFile}`
  )
}

export async function readText(path: string, maxBytes = 256 * 1024): Promise<string> {
  let handle
  try {
    handle = await open(path, "r")
  } catch {
    return ""
  }
  try {
    const { size } = await handle.stat()
    const start = Math.max(0, size - maxBytes)
    const buffer = Buffer.alloc(size - start)
    await handle.read(buffer, 0, buffer.length, start)
    return buffer.toString("utf8")
  } finally {
    await handle.close()
  }
}

/** The last `lines` lines of `text`, indented, for failure messages. */
export const lastLines = (text: string, lines: number): string =>
  text
    .trimEnd()
    .split("\n")
    .slice(-lines)
    .map((l) => `    ${l}`)
    .join("\n")
