/**
 * Waiting in tests: the one poll loop (`eventually`) and the one plain pause (`sleep`).
 * A test waits on a condition, never on a guess of how long something takes; `sleep` is
 * only for "nothing happens during this window" and for pacing a fault.
 */

/** A pause of `ms`: for a window in which something must NOT happen, never to let something happen. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Polls `check` until it returns a value other than undefined or false, and returns that
 * value; a check that throws counts as "not yet" (its last error goes into the timeout's
 * message). Polls every 20 ms at first, less often the longer it takes, up to every
 * 250 ms (a check is often an HTTP request, and some tests wait for minutes), or every
 * `everyMs` for a check that also samples what it sees.
 *
 * @param what what is awaited, as the timeout error says it: "timed out after 5000 ms waiting for <what>"
 * @param timeoutMs the deadline, generous: files run side by side on a small, shared machine
 * @param dump what else to print on timeout (a child's output, the state seen)
 */
export const eventually = async <A>(
  what: string,
  check: () => A | undefined | false | Promise<A | undefined | false>,
  timeoutMs = 60_000,
  dump?: () => string,
  everyMs?: number
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  let interval = everyMs ?? 20
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      last = error
    }
    if (Date.now() >= deadline) break
    await sleep(Math.min(interval, Math.max(1, deadline - Date.now())))
    if (everyMs === undefined) interval = Math.min(250, interval * 1.5)
  }
  const lastError = last === undefined ? "" : ` (last error: ${last instanceof Error ? last.message : String(last)})`
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError}${dump ? `\n${dump()}` : ""}`)
}
