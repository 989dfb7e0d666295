/** Running the `sacar` command as users do: a child process on the project's Node. */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

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

/** Runs `sacar <args>` to completion with the given extra environment. */
export const runSacar = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}, timeoutMs = 30_000): Promise<RunResult> =>
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
      reject(new Error(`sacar ${args.join(" ")} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
