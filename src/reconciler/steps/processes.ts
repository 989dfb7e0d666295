/** When a process on this host started, to notice a recycled pid. */
import { readFileSync } from "node:fs"

/** The kernel's start time of `pid` (clock ticks since boot), to notice a recycled pid. */
export const processStartTime = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) may hold spaces and parentheses; fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[19]
  } catch {
    return undefined
  }
}
