/** Running the `sacar` command as users do: a child process on the project's Node. */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import pLimit from "p-limit"

export const SACAR_BIN = fileURLToPath(new URL("../../bin/sacar.ts", import.meta.url))

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * The environment for a child `sacar`: ours, without node:test's NODE_TEST_CONTEXT
 * (a child Node that inherits it behaves as a test worker and never exits normally).
 */
export const childEnv = (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, SACAR_LOG_FORMAT: "json", ...extra }
  delete env.NODE_TEST_CONTEXT
  return env
}

// Each `sacar` start costs about half a CPU-second; on a 2-core machine running other
// test files at the same time, a burst of dozens of them only makes every one slow.
const limit = pLimit(3)

/** Runs `sacar <args>` to completion with the given extra environment. */
export const runSacar = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000
): Promise<RunResult> => limit(() => runNow(args, env, timeoutMs))

const runNow = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined>,
  timeoutMs: number
): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SACAR_BIN, ...args], {
      env: childEnv(env),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(
        new Error(`sacar ${args.join(" ")} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)
      )
    }, timeoutMs)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
