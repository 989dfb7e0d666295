/**
 * The one way out no handler in the demo sees is SIGKILL (or the OOM killer). A small
 * process next to the demo covers it: it holds the read end of a pipe from the demo,
 * and when the pipe closes (the demo exited, however it exited) it stops whatever
 * the pids file lists that still carries the demo folder, and any script running out
 * of it. After a clean exit that is nothing, and it is gone in milliseconds.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { killLeftovers } from "./leftovers.ts"

const SELF = fileURLToPath(import.meta.url)

export interface Watchdog {
  /** Tells the watchdog the demo is done (it checks once more and exits). */
  release(): void
}

export function startWatchdog(dir: string, pidsFile: string): Watchdog {
  const child: ChildProcess = spawn(process.execPath, [SELF, dir, pidsFile], {
    // Its own group, so the terminal's Ctrl-C reaches only the demo.
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
    env: { PATH: process.env.PATH ?? "" }
  })
  child.on("error", () => {})
  child.stdin?.on("error", () => {})
  // Neither the process nor the pipe may keep the demo alive.
  child.unref()
  ;(child.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return { release: () => child.stdin?.end() }
}

if (import.meta.main) {
  const [dir, pidsFile] = process.argv.slice(2)
  if (dir === undefined || pidsFile === undefined) process.exit(2)
  process.on("SIGINT", () => {})
  process.on("SIGHUP", () => {})
  process.stdin.resume()
  process.stdin.on("close", () => {
    void readFile(pidsFile, "utf8").catch(() => "").then((pids) => killLeftovers(pids, dir)).finally(() =>
      process.exit(0)
    )
  })
}
