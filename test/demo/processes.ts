// What a test needs to prove that a demo run left nothing behind.
import { readdirSync, readFileSync } from "node:fs"
import { readFile } from "node:fs/promises"

export { isAlive } from "../../src/process/alive.ts"

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

/** Waits up to `ms` for `check` to hold, polling. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return check()
}
