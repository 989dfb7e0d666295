/** When a process on this host started, to notice a recycled pid. */
import { readFileSync } from "node:fs"
import { groupAlive } from "../../process/run.ts"

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

/**
 * Whether the process group a run recorded (its leader's pid and start time) still has
 * processes. The leader may be gone while its children live on: the group is looked
 * up by its id, not by the leader. A leader pid now held by another process (a
 * different start time) means the group is gone: Linux does not hand out a pid that
 * is still some group's id.
 */
export const recordedGroupAlive = (pid: number, processStart: string | undefined): boolean => {
  if (!Number.isInteger(pid) || pid <= 0) return false
  const leaderStart = processStartTime(pid)
  if (leaderStart !== undefined && processStart !== undefined && leaderStart !== processStart) return false
  return groupAlive(pid)
}
