/**
 * Processes an earlier demo run could not stop (it was killed with SIGKILL, or the
 * machine's OOM killer took it). The pids file lists them; a pid is only ours if the
 * process still carries SACAR_DEMO_DIR=<this folder> in its environment, so a pid the
 * system has since reused for something else is never touched.
 */
import { readdirSync, readFileSync } from "node:fs"
import { isAlive } from "../process/alive.ts"

/** The variable every child of the demo carries, naming the demo folder. */
export const DEMO_DIR_VARIABLE = "SACAR_DEMO_DIR"

const belongsTo = (pid: number, dir: string): boolean => {
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
    return environ.includes(`${DEMO_DIR_VARIABLE}=${dir}`)
  } catch {
    return false
  }
}

const signal = (pid: number, sig: NodeJS.Signals) => {
  // The children lead their own process groups; the group takes their scripts along.
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, sig)
    } catch {
      // already gone
    }
  }
}

/** Parses "pid name" lines, stops the processes still ours (TERM, then KILL), returns how many. */
export async function killLeftovers(pidsFile: string, dir: string, graceMs = 3_000): Promise<number> {
  const pids = pidsFile
    .split("\n")
    .map((line) => Number(line.trim().split(/\s+/)[0]))
    .filter((pid) => Number.isInteger(pid) && pid > 1 && isAlive(pid) && belongsTo(pid, dir))
  for (const pid of pids) signal(pid, "SIGTERM")
  const deadline = performance.now() + graceMs
  while (pids.some(isAlive) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  for (const pid of pids.filter(isAlive)) signal(pid, "SIGKILL")
  // Their scripts run in groups of their own and would outlive them.
  if (pids.length > 0) killProcessesUsing(dir)
  return pids.length
}

/**
 * Every process whose SACAR_* variables point into `dir`: the demo's children and the
 * scripts their reconcilers run (bin/prepare, pip ...), which sit in process groups of
 * their own and outlive a reconciler that had to be killed. Only SACAR_* variables
 * count, so an operator's shell that merely `cd`s into the folder is never matched.
 * Linux only (/proc); elsewhere the list is empty.
 */
export function processesUsing(dir: string): number[] {
  let pids: string[]
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name))
  } catch {
    return []
  }
  const found: number[] = []
  for (const name of pids) {
    const pid = Number(name)
    if (pid === process.pid) continue
    let environ: string[]
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
    } catch {
      continue
    }
    const ours = environ.some((entry) => {
      if (!entry.startsWith("SACAR_")) return false
      const value = entry.slice(entry.indexOf("=") + 1)
      return value === dir || value.startsWith(`${dir}/`)
    })
    if (ours) found.push(pid)
  }
  return found
}

/** SIGKILL for whatever still runs out of `dir`; returns how many there were. */
export function killProcessesUsing(dir: string): number {
  const pids = processesUsing(dir)
  for (const pid of pids) signal(pid, "SIGKILL")
  return pids.length
}
