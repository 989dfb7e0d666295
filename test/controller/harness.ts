// A real `sacar controller` process for tests: spawned with the given environment on
// port 0, its URL read from the "listening on" log line, stopped with SIGTERM. Plus
// raw KV access (fetch, no Sacar code) so tests check what was written independently
// of the code under test.
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { Kv, type KvEntry } from "../support/kv.ts"

const ROOT = join(import.meta.dirname, "..", "..")
const NODE = join(ROOT, "node_modules", ".bin", "node")
const SACAR = join(ROOT, "bin", "sacar.ts")

export interface RunningController {
  readonly url: string
  readonly child: ChildProcess
  /** Everything the controller logged so far. */
  logs(): string
  /** SIGTERM (unless already sent), then wait for exit; returns the exit code. */
  stop(): Promise<number | null>
}

export interface ControllerEnv {
  readonly consul: string
  readonly prefix: string
  readonly webhookSecret?: string
  readonly notifyToken?: string
  /** SACAR_READ_TOKEN: the token of GET /v1. */
  readonly readToken?: string
  readonly extra?: Readonly<Record<string, string>>
}

/** The environment without anything from the test runner's own GitHub/Sacar settings. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(GITHUB_|SACAR_|CONSUL_)/.test(k)) continue
    env[k] = v
  }
  return env
}

export const controllerEnv = (options: ControllerEnv): Record<string, string> => ({
  ...cleanEnv(),
  CONSUL_HTTP_ADDR: options.consul,
  SACAR_PREFIX: options.prefix,
  SACAR_LISTEN: "127.0.0.1:0",
  SACAR_LOG_FORMAT: "json",
  SACAR_LOG_LEVEL: "debug",
  ...(options.webhookSecret !== undefined ? { GITHUB_WEBHOOK_SECRET: options.webhookSecret } : {}),
  ...(options.notifyToken !== undefined ? { SACAR_NOTIFY_TOKEN: options.notifyToken } : {}),
  ...(options.readToken !== undefined ? { SACAR_READ_TOKEN: options.readToken } : {}),
  ...options.extra
})

export const startController = (env: Record<string, string>, timeoutMs = 60_000): Promise<RunningController> =>
  new Promise((resolve, reject) => {
    const child = spawn(NODE, [SACAR, "controller"], { env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    let done = false
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
    const stop = async () => {
      // One SIGTERM only: a second one is the operator's "exit now" (and, once the
      // controller has finished shutting down, the default action: death by signal).
      if (child.exitCode === null && child.signalCode === null && !child.killed) child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
      const code = await exited
      clearTimeout(timer)
      return code
    }
    const timer = setTimeout(() => {
      if (done) return
      done = true
      child.kill("SIGKILL")
      reject(new Error(`controller did not log "listening on" within ${timeoutMs} ms:\n${output}`))
    }, timeoutMs)
    const onData = (d: Buffer) => {
      output += d.toString()
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output)
      if (match && !done) {
        done = true
        clearTimeout(timer)
        resolve({ url: match[1]!, child, logs: () => output, stop })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(new Error(`controller exited with ${code} before listening:\n${output}`))
    })
  })

/** Runs `sacar controller` to completion (for start-up failures); returns code and stderr. */
export const runControllerToExit = (
  env: Record<string, string>,
  timeoutMs = 60_000
): Promise<{ code: number | null; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(NODE, [SACAR, "controller"], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`controller still running after ${timeoutMs} ms:\n${stderr}`))
    }, timeoutMs)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })

// ---------------------------------------------------------------------------------
// KV, straight over Consul's HTTP API (test/support/kv.ts), by whole key

/** Every key under `prefix/` with its value and ModifyIndex. */
export const listPrefix = (consul: string, prefix: string): Promise<Map<string, KvEntry>> =>
  new Kv(consul).list(`${prefix}/`)

/**
 * A comparable snapshot of the prefix: key -> index:value. The leader lock
 * (`<prefix>/_controller/leader`) is left out: the controller's reporter takes it
 * on its own schedule, and it is not something a request writes.
 */
export const snapshot = async (consul: string, prefix: string): Promise<Record<string, string>> => {
  const all = await listPrefix(consul, prefix)
  return Object.fromEntries(
    [...all].filter(([k]) => !k.startsWith(`${prefix}/_controller/`)).map((
      [k, v]
    ) => [k, `${v.modifyIndex}:${v.value}`])
  )
}

export const putKv = async (consul: string, key: string, value: unknown): Promise<void> => {
  if (!(await new Kv(consul).put(key, typeof value === "string" ? value : JSON.stringify(value)))) {
    throw new Error(`put ${key}: Consul answered false`)
  }
}

export const getJson = (consul: string, key: string): Promise<any> => new Kv(consul).json(key)

/** A random 40-hex commit sha. */
export const randomSha = (): string =>
  Array.from({ length: 40 }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("")
