// What a test needs to prove that a demo run left nothing behind.
import assert from "node:assert/strict"
import { readdirSync, readFileSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { isAlive } from "../../src/process/alive.ts"
import { eventually } from "../support/eventually.ts"

export { isAlive }

/** "pid name" lines of the demo's pids file. */
export async function loggedPids(pidsFile: string): Promise<Array<{ pid: number; name: string }>> {
  const text = await readFile(pidsFile, "utf8")
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [pid, name] = l.trim().split(/\s+/)
      return { pid: Number(pid), name: name ?? "" }
    })
}

/** Live processes (not zombies) whose environment or command line mentions `text`. */
export function processesMentioning(text: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = []
  for (const name of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    const pid = Number(name)
    if (pid === process.pid) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      if (/^\d+ \(.*\) Z /.test(stat)) continue
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8")
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")
      if (environ.includes(text) || cmdline.includes(text)) found.push({ pid, cmdline })
    } catch {
      // gone, or not ours to read
    }
  }
  return found
}

/** Every process the demo in `dir` started (its pids file) and anything using the folder is gone. */
export const assertNothingLeft = async (dir: string): Promise<void> => {
  const pids = await loggedPids(join(dir, "pids"))
  assert.deepEqual(pids.map((p) => p.name).sort(), ["controller", "demo-1", "demo-2", "demo-3"])
  // The demo waits for its children before it exits, so this holds at once; the short
  // grace only absorbs the kernel's reaping of a just-killed process.
  await eventually(
    "the demo's processes to end",
    () => pids.every((p) => !isAlive(p.pid)),
    2_000,
    () => `still alive: ${pids.filter((p) => isAlive(p.pid)).map((p) => `${p.pid} ${p.name}`).join(", ")}`
  )
  // The watchdog (src/demo/watchdog.ts) names the folder too; it leaves right after the demo.
  await eventually(
    `no process using ${dir}`,
    () => processesMentioning(dir).length === 0,
    2_000,
    () => JSON.stringify(processesMentioning(dir))
  )
}
