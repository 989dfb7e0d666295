// Blocking queries: `?index=N&wait=D` holds a read until its result index passes N or
// the wait (plus Consul's jitter) runs out. Each held request waits in the store for
// the writes that could move its index (one key, a prefix, the sessions), so a write
// wakes only the requests it concerns, whatever else thousands of clients hold, and
// nothing polls.

import type { ServerResponse } from "node:http"
import { parseGoDuration } from "./duration.ts"
import { HttpError } from "./http.ts"
import { parseUint64 } from "./json.ts"
import type { Interest, Store } from "./store.ts"

const DEFAULT_WAIT_MS = 5 * 60_000
const MAX_WAIT_MS = 10 * 60_000
const JITTER_FRACTION = 16

export interface BlockingParams {
  /** 0 means a plain read. */
  readonly minIndex: bigint
  readonly waitMs: number
}

/** Parses `index` and `wait` as Consul's parseWait does (400 on bad values). */
export function parseBlocking(url: URL): BlockingParams {
  const q = url.searchParams
  let waitMs = DEFAULT_WAIT_MS
  const wait = q.get("wait")
  if (wait !== null && wait !== "") {
    const ns = parseGoDuration(wait)
    if (ns === undefined) throw new HttpError(400, "Invalid wait time")
    waitMs = ns <= 0 ? DEFAULT_WAIT_MS : Math.min(ns / 1e6, MAX_WAIT_MS)
  }
  let minIndex = 0n
  const index = q.get("index")
  if (index !== null && index !== "") {
    const n = parseUint64(index)
    if (n === undefined) throw new HttpError(400, "Invalid index")
    minIndex = n
  }
  return { minIndex, waitMs }
}

/**
 * Runs `query` until its index exceeds `minIndex`, waiting for the writes that
 * `interest` says could move the current result's index. Returns the last result at
 * the deadline, or undefined when the client went away (nothing should be written then).
 * Plain async inside dev-consul's node:http server (not an Effect program): the deadline
 * is `Date`'s, and the loop waits on store events, not on a retry schedule.
 *
 * `notFound` marks a result Consul's endpoint reports as ErrNotFound (a missing key).
 * Consul's blocking loop (agent/blockingquery, 1.12+) treats "not found again" after a
 * wake-up as no change and keeps waiting, although the index it reports (the table's)
 * moved: only the first run answers "still missing", when the table moved past the
 * index the client sent. A missing key's watch therefore sleeps through writes nearby.
 */
export async function blockingQuery<T extends { index: number }>(
  store: Store,
  res: ServerResponse,
  params: BlockingParams,
  query: () => T,
  interest: (current: T) => Interest,
  notFound: (current: T) => boolean = () => false
): Promise<T | undefined> {
  let result = query()
  if (params.minIndex === 0n || BigInt(result.index) > params.minIndex) return result

  const jitter = Math.random() * (params.waitMs / JITTER_FRACTION)
  const deadline = Date.now() + params.waitMs + jitter
  // Missing when the wait began: "still missing" is no change. Once found, the key's
  // index is its own and moved past the client's, so the loop answers.
  const missing = notFound(result)
  while (true) {
    const outcome = await nextRelevantChange(store, res, deadline, interest(result))
    if (outcome === "closed") return undefined
    result = query()
    if (outcome === "timeout") return result
    if (missing && notFound(result)) continue
    // An index that went backwards (tombstones reaped) is an answer too: the client must
    // see it to reset to 0, as Consul's blocking-query rule asks.
    if (BigInt(result.index) !== params.minIndex) return result
  }
}

function nextRelevantChange(
  store: Store,
  res: ServerResponse,
  deadline: number,
  interest: Interest
): Promise<"changed" | "timeout" | "closed"> {
  return new Promise((resolve) => {
    const finish = (outcome: "changed" | "timeout" | "closed") => {
      unsubscribe()
      clearTimeout(timer)
      res.off("close", onClose)
      resolve(outcome)
    }
    const onClose = () => finish("closed")
    const unsubscribe = store.waitFor(interest, () => finish("changed"))
    const timer = setTimeout(() => finish("timeout"), Math.max(0, deadline - Date.now()))
    res.on("close", onClose)
    if (res.destroyed) finish("closed")
  })
}
