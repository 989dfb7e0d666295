/**
 * One status writer per app on this node: the only code that PUTs
 * `sacar/<app>/status/<node>`. Everything that happens (a step starting, a deploy
 * going live) changes the in-memory NodeStatus; the writer coalesces those changes
 * into at most one write per interval, and `flush` writes at once when another node
 * must see the state now (a deploy failure before giving back its slot). A write that
 * fails is retried; the newest state always wins, nothing is queued per change.
 *
 * Coalescing protects Consul from bursts, not from the first change: a change that
 * comes an interval or more after the last write is written at once, by the update
 * itself (its PUT is on its way before the caller's next step: a release taken up
 * after a quiet spell reaches Consul before the node does anything else for it), and
 * only changes that follow a write closely wait for the interval to end. An update
 * that changes nothing writes nothing and starts no interval.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { consulWriteRetry } from "../common/retry.ts"
import { nowIso } from "../common/time.ts"
import { Consul, isTransientConsulError } from "../consul/consul.ts"
import type { ConsulError } from "../consul/consul.ts"
import type { NodeStatus } from "../spec/documents.ts"

export interface StatusWriter {
  readonly get: Effect.Effect<NodeStatus>
  /** Changes the status; written within the interval. */
  readonly update: (f: (status: NodeStatus) => NodeStatus) => Effect.Effect<void>
  /** Writes the latest state now; done once Consul has it (retried while Consul is unreachable). */
  readonly flush: Effect.Effect<void>
  /**
   * Done once no write is on its way: the one an update just sent has been answered
   * (or has failed, to be retried later). Writes nothing itself.
   */
  readonly settled: Effect.Effect<void>
}

export const STATUS_INTERVAL_MS = 400

/** Consul refuses values over 512 KiB; a status document stays far below that. */
export const STATUS_BUDGET_BYTES = 128 * 1024
const MESSAGE_MAX_CHARS = 1024

/**
 * The status as written: unchanged when within the budget, else without the releases'
 * log tails and with long messages cut, so the node's status never freezes at
 * Consul's limit (the plan already keeps logs only for the newest failures).
 */
export const withinBudget = (status: NodeStatus): NodeStatus => {
  // The JSON of the status as it is in memory: what the Schema encodes (strings, numbers,
  // records) is the same text, without running the encoder on every update to measure it.
  if (Buffer.byteLength(JSON.stringify(status)) <= STATUS_BUDGET_BYTES) return status
  const cut = (message: string | undefined) =>
    message === undefined || message.length <= MESSAGE_MAX_CHARS
      ? {}
      : { message: `${message.slice(0, MESSAGE_MAX_CHARS)}…` }
  const releases: Record<string, NodeStatus["releases"][string]> = {}
  for (const [sha, entry] of Object.entries(status.releases)) {
    const { log: _dropped, ...rest } = entry
    releases[sha] = { ...rest, ...cut(rest.message) }
  }
  return { ...status, releases }
}

/** Comparable content, without the time of the write. */
const content = (status: NodeStatus) => JSON.stringify({ ...status, updatedAt: "" })

export const emptyStatus = (node: string, updatedAt: string): NodeStatus => ({
  node,
  updatedAt,
  releases: {},
  current: null,
  deploy: null
})

/**
 * Starts the writer in the enclosing scope; the final state is flushed when the scope
 * closes. `initial` is what this node last wrote (read back at start-up), so the
 * first write happens only once something changed; a node new to the app writes its
 * (empty) status at once, so the app's nodes are visible before any release.
 */
export const makeStatusWriter = (options: {
  readonly key: string
  readonly initial: NodeStatus
  /** Whether `initial` is what Consul holds; if not, it is written at once. */
  readonly stored: boolean
  readonly intervalMs?: number
}): Effect.Effect<StatusWriter, never, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const scope = yield* Effect.scope
    const intervalMs = options.intervalMs ?? STATUS_INTERVAL_MS
    const state = yield* Ref.make(options.initial)
    let written = options.stored ? content(options.initial) : ""
    const dirty = yield* Queue.sliding<void>(1)
    if (!options.stored) yield* Queue.offer(dirty, undefined)
    const writing = yield* Semaphore.make(1)
    /** When the last write went out (ms, Clock); a change within an interval of it waits. */
    let lastWriteAt = -Infinity
    /** A write is on its way: a change now waits for it and then for the interval. */
    let inFlight = false

    const writeOnce: Effect.Effect<void, ConsulError> = writing.withPermit(
      Effect.gen(function*() {
        const status = yield* Ref.get(state)
        const text = content(status)
        if (text === written) return
        inFlight = true
        // NodeStatus's encoded form is its in-memory form (strings, numbers, records and
        // null, no transformation), so JSON.stringify writes the bytes Schema's encoder
        // would, without running it on every write (status.test.ts checks the two agree).
        yield* consul.put(options.key, JSON.stringify(withinBudget({ ...status, updatedAt: yield* nowIso })))
        written = text
        lastWriteAt = yield* Clock.currentTimeMillis
      }).pipe(Effect.ensuring(Effect.sync(() => inFlight = false)))
    )
    const writeOrRetryLater = writeOnce.pipe(
      Effect.catch((error) =>
        Effect.logWarning(`cannot write ${options.key}, will retry: ${error.message}`).pipe(
          Effect.andThen(Queue.offer(dirty, undefined)),
          Effect.andThen(Effect.sleep(1000))
        )
      )
    )
    // The writer's main loop: one write per wake-up, at most one per interval.
    yield* Effect.gen(function*() {
      yield* Queue.take(dirty)
      // A write on its way (one an update started) ends first: the interval runs from it.
      yield* writing.withPermit(Effect.void)
      const waitMs = lastWriteAt + intervalMs - (yield* Clock.currentTimeMillis)
      // Within an interval of the last write: a burst, written once at the interval's end.
      if (waitMs > 0) yield* Effect.sleep(waitMs)
      yield* writeOrRetryLater
    }).pipe(Effect.forever, Effect.forkScoped)

    /**
     * After a change: written at once by a fiber that starts right here and runs until
     * its PUT is sent, when no write is on its way and the last one is an interval old;
     * else left to the loop above. Both go through `writeOnce`, so the newest state wins
     * and nothing is written twice.
     */
    const changed = Effect.gen(function*() {
      if (content(yield* Ref.get(state)) === written) return
      if (!inFlight && (yield* Clock.currentTimeMillis) >= lastWriteAt + intervalMs) {
        yield* Effect.forkIn(writeOrRetryLater, scope, { startImmediately: true })
      } else yield* Queue.offer(dirty, undefined)
    })

    // Until Consul has it: a deploy's failure must be seen by the next node's halt check
    // before this node gives back its slot, however long Consul takes to come back.
    const flush = writeOnce.pipe(
      Effect.tapError((error) => Effect.logWarning(`cannot write ${options.key}, retrying: ${error.message}`)),
      Effect.retry({ schedule: consulWriteRetry, while: isTransientConsulError }),
      Effect.catch((error) => Effect.logError(`cannot write ${options.key}: ${error.message}`))
    )
    yield* Effect.addFinalizer(() => flush.pipe(Effect.timeout("3 seconds"), Effect.ignore))

    return {
      get: Ref.get(state),
      update: (f) => Ref.update(state, f).pipe(Effect.andThen(changed)),
      flush,
      // A write on its way holds the permit until Consul has answered it.
      settled: writing.withPermit(Effect.void)
    }
  })
