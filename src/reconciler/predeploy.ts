/**
 * Run-once pre-deploy: `bin/pre-deploy` (migrations) runs exactly once per deploy
 * generation in the whole cluster, before any node runs `bin/deploy`.
 *
 * The key `sacar/<app>/locks/predeploy/<generation>` is a Go-api-style lock whose
 * value is a PredeployDoc. Every node of the rollout runs the same loop:
 * - `succeeded` or `failed` in the document: that is the answer, for every node;
 * - held by a session: someone is running it; wait (blocking query) for a change;
 * - free (absent, or `running` with no session because its runner's session died):
 *   take it in one transaction that checks nothing changed since the read (so a
 *   result written in between is never overwritten), run the script, and write the
 *   result while giving the lock back (`?release`), which wakes everyone waiting.
 *
 * The runner's session has a short TTL (10s, Consul's minimum) and a lock-delay of the
 * same length: the runner stops within one TTL of its last renewal (session.ts), so
 * when Consul invalidates the session (between one and two TTLs after that renewal)
 * no other node may take the lock before the runner has stopped. After a kill -9
 * another node takes over within about three TTLs; a successor of the dead runner on
 * the same node destroys the dead session at once.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import { readFileSync, writeFileSync } from "node:fs"
import { consulWriteRetry } from "../common/retry.ts"
import { nowIso } from "../common/time.ts"
import { Consul, isTransientConsulError } from "../consul/consul.ts"
import type { ConsulError, KvEntry } from "../consul/consul.ts"
import { LOCK_FLAGS } from "../consul/lock.ts"
import { openSession } from "../consul/session.ts"
import { decodeDocument, encodeDocument } from "../spec/decode.ts"
import { PredeployDoc } from "../spec/predeploy.ts"
import { sessionName } from "./membership.ts"
import { runScript } from "./scripts.ts"
import type { ScriptContext } from "./steps/environment.ts"

export const PREDEPLOY_SESSION_TTL = "10s"

export type PredeployOutcome =
  | { readonly _tag: "Succeeded"; readonly doc: PredeployDoc }
  | { readonly _tag: "Failed"; readonly doc: PredeployDoc }

export interface PredeployInput {
  readonly key: string
  readonly generation: number
  readonly context: ScriptContext
  readonly timeoutMs: number
  /** Where the running script's process group is recorded (see scripts.ts). */
  readonly groupFile: string
  /** Where this node keeps a finished result until Consul has it (`$SACAR_ROOT/<app>/.pre-deploy.result`). */
  readonly resultFile?: string
  /** Called when this node starts waiting on another's run, or starts its own. */
  readonly onProgress: (message: string) => Effect.Effect<void>
}

type Turn = { readonly _tag: "Done"; readonly outcome: PredeployOutcome } | { readonly _tag: "Again" }

/** This node's run, once it holds the lock. Returns Again when the lock was lost mid-run. */
const runHolding = (input: PredeployInput, sessionId: string, lost: Effect.Effect<string>, running: PredeployDoc) =>
  Effect.gen(function*() {
    yield* input.onProgress(
      running.attempt > 1
        ? `running bin/pre-deploy (attempt ${running.attempt}: the node that ran it before died)`
        : "running bin/pre-deploy"
    )
    const raced = yield* Effect.raceFirst(
      Effect.result(runScript("pre-deploy", input.context, input.timeoutMs, input.groupFile)).pipe(
        Effect.map((r) => ({ _tag: "Ran" as const, r }))
      ),
      lost.pipe(Effect.map((reason) => ({ _tag: "Lost" as const, reason })))
    )
    if (raced._tag === "Lost") {
      yield* Effect.logWarning(
        `pre-deploy of generation ${input.generation}: lock lost while running (${raced.reason}); looking again`
      )
      return { _tag: "Again" } as Turn
    }
    const finishedAt = yield* nowIso
    const finished: PredeployDoc = Result.isSuccess(raced.r)
      ? {
        ...running,
        phase: "succeeded",
        finishedAt,
        message: raced.r.success.message,
        log: raced.r.success.log
      }
      : {
        ...running,
        phase: "failed",
        finishedAt,
        message: raced.r.failure.message,
        log: raced.r.failure.log
      }
    // The result must land: a lost write would make another node run it again.
    remember(input.resultFile, finished)
    const recorded = yield* recordResult(input.key, finished, running, sessionId, lost)
    if (!recorded) return { _tag: "Again" } as Turn
    return {
      _tag: "Done",
      outcome: { _tag: finished.phase === "succeeded" ? "Succeeded" : "Failed", doc: finished }
    } as Turn
  })

/** The run that wrote `running` is the one `doc` describes, still unfinished. */
const sameRun = (doc: PredeployDoc | undefined, running: PredeployDoc) =>
  doc !== undefined && doc.phase === "running" && doc.generation === running.generation &&
  doc.node === running.node && doc.attempt === running.attempt && doc.startedAt === running.startedAt

const decodeEntry = (entry: KvEntry | undefined): PredeployDoc | undefined => {
  if (entry === undefined) return undefined
  const decoded = decodeDocument(PredeployDoc, "pre-deploy record", entry.key, entry.value)
  return Result.isSuccess(decoded) ? decoded.success : undefined
}

/** Consul trouble while a finished result waits to be recorded: look again every second, for as long as it takes. */
const RECORD_RETRY = Schedule.spaced("1 second")

/**
 * Writes a finished run's result until Consul has it. While the session lives, with
 * `?release=` (the usual way, freeing the lock); once the session is gone (a Consul
 * outage outlasting it), by check-and-set against the `running` document this run
 * wrote, so that nobody who took over since is overwritten. False only when someone
 * else moved the key on: the result can no longer be recorded.
 */
const recordResult = (
  key: string,
  finished: PredeployDoc,
  running: PredeployDoc,
  sessionId: string,
  lost: Effect.Effect<string>
): Effect.Effect<boolean, never, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const value = encodeDocument(PredeployDoc, finished)
    const held = yield* Effect.raceFirst(
      consul.put(key, value, { release: sessionId, flags: LOCK_FLAGS }).pipe(
        Effect.retry({ schedule: RECORD_RETRY, while: isTransientConsulError }),
        Effect.result
      ),
      lost.pipe(Effect.as(undefined))
    )
    if (held !== undefined && Result.isSuccess(held) && held.success) return true

    const casOnce = Effect.gen(function*() {
      const { value: entry } = yield* consul.get(key)
      const doc = decodeEntry(entry)
      if (
        doc !== undefined && doc.phase !== "running" && doc.node === finished.node && doc.attempt === finished.attempt
      )
        return true // an earlier write landed after all
      if (entry === undefined || !sameRun(doc, running)) return false
      if (entry.session !== undefined && entry.session !== sessionId) return false
      const ok = entry.session === sessionId
        ? yield* consul.put(key, value, { release: sessionId, flags: LOCK_FLAGS })
        : yield* consul.put(key, value, { cas: entry.modifyIndex, flags: LOCK_FLAGS })
      return ok ? true : yield* Effect.fail(new ResultNotRecorded())
    })
    return yield* casOnce.pipe(
      Effect.tapError((e) =>
        Effect.logWarning(`pre-deploy result for ${key} not recorded yet: ${e.message}; retrying`)
      ),
      Effect.retry({ schedule: RECORD_RETRY, while: (e) => e._tag !== "ConsulRequestError" }),
      Effect.catch((e) =>
        Effect.logError(`pre-deploy result for ${key} could not be recorded: ${e.message}`).pipe(Effect.as(false))
      )
    )
  })

/** The key changed between the read and the check-and-set: read again. */
class ResultNotRecorded extends Data.TaggedError("ResultNotRecorded")<{}> {
  override get message() {
    return "the key changed while writing"
  }
}

/** Keeps a finished result on disk until the next generation, for a restart before it was recorded. */
const remember = (file: string | undefined, doc: PredeployDoc): void => {
  if (file === undefined) return
  try {
    writeFileSync(file, JSON.stringify(doc) + "\n")
  } catch {
    // Best effort: without it a restart runs bin/pre-deploy again, as before.
  }
}

/** This node's remembered result for the run `running` describes, if it finished. */
const remembered = (file: string | undefined, running: PredeployDoc): PredeployDoc | undefined => {
  if (file === undefined) return undefined
  try {
    const doc = JSON.parse(readFileSync(file, "utf8")) as PredeployDoc
    return doc.phase !== "running" && doc.generation === running.generation && doc.node === running.node &&
        doc.attempt === running.attempt && doc.startedAt === running.startedAt
      ? doc
      : undefined
  } catch {
    return undefined
  }
}

const takeTurn = (
  input: PredeployInput,
  index: number
): Effect.Effect<{ turn: Turn; index: number }, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const { node, sha } = input.context
    const read = yield* consul.get(input.key, { index, wait: "30s" })
    const next = read.index < index ? 0 : Math.max(1, read.index)
    const entry = read.value
    const decoded = entry === undefined
      ? undefined
      : decodeDocument(PredeployDoc, "pre-deploy record", entry.key, entry.value)
    const doc = decoded !== undefined && Result.isSuccess(decoded) ? decoded.success : undefined
    if (doc?.generation === input.generation && doc.phase === "succeeded") {
      return { turn: { _tag: "Done", outcome: { _tag: "Succeeded", doc } }, index: next }
    }
    if (doc?.generation === input.generation && doc.phase === "failed") {
      return { turn: { _tag: "Done", outcome: { _tag: "Failed", doc } }, index: next }
    }

    const ownName = sessionName("pre-deploy", node)
    if (entry?.session !== undefined) {
      const info = yield* consul.sessionInfo(entry.session)
      if (info?.name === ownName) {
        // Only one reconciler runs per node: this is a dead predecessor's session.
        yield* Effect.logInfo(
          `pre-deploy of generation ${input.generation} is held by an earlier run of this node; freeing it`
        )
        yield* consul.destroySession(entry.session)
        return { turn: { _tag: "Again" }, index: 0 }
      }
      yield* input.onProgress(`waiting for bin/pre-deploy, running on ${doc?.node ?? "another node"}`)
      return { turn: { _tag: "Again" }, index: next }
    }

    // A run of this node finished before its result reached Consul (a restart or an
    // outage in between): record that result instead of running the script again.
    const finished = doc === undefined || entry === undefined ? undefined : remembered(input.resultFile, doc)
    if (finished !== undefined && entry !== undefined) {
      yield* Effect.logInfo(`pre-deploy of generation ${input.generation} finished here before; recording its result`)
      const ok = yield* consul.put(input.key, encodeDocument(PredeployDoc, finished), {
        cas: entry.modifyIndex,
        flags: LOCK_FLAGS
      })
      return { turn: { _tag: "Again" }, index: ok ? next : 0 }
    }

    // Free: take it, unless it changed since this read.
    return yield* Effect.scoped(Effect.gen(function*() {
      const session = yield* openSession({
        name: ownName,
        ttl: PREDEPLOY_SESSION_TTL,
        behavior: "release",
        // At least the TTL: see the comment at the top.
        lockDelay: PREDEPLOY_SESSION_TTL
      })
      const running: PredeployDoc = {
        generation: input.generation,
        sha,
        phase: "running",
        node,
        startedAt: yield* nowIso,
        attempt: (doc?.attempt ?? 0) + 1
      }
      const taken = yield* consul.txn([
        entry === undefined
          ? { verb: "check-not-exists", key: input.key }
          : { verb: "check-index", key: input.key, index: entry.modifyIndex },
        {
          verb: "lock",
          key: input.key,
          value: encodeDocument(PredeployDoc, running),
          session: session.id,
          flags: LOCK_FLAGS
        }
      ])
      if (!taken.ok) {
        // Someone else moved first, or a lock-delay is still on: look again shortly.
        yield* Effect.sleep(500)
        return { turn: { _tag: "Again" } as Turn, index: 0 }
      }
      const turn = yield* runHolding(input, session.id, session.lost, running)
      return { turn, index: 0 }
    }))
  })

/** Waits for, or runs, the pre-deploy of one generation; Consul outages are retried. */
export const predeploy = (input: PredeployInput): Effect.Effect<PredeployOutcome, never, Consul> =>
  Effect.gen(function*() {
    // The index a turn hands to the next (a blocking read's); a failure starts over at 0.
    let index = 0
    const done = yield* Effect.suspend(() => takeTurn(input, index)).pipe(
      Effect.tapError((error) =>
        Effect.sync(() => {
          index = 0
        }).pipe(
          Effect.andThen(
            Effect.logWarning(`pre-deploy of generation ${input.generation}: ${error.message}; retrying`)
          )
        )
      ),
      Effect.retry(consulWriteRetry),
      Effect.tap((turn) =>
        Effect.sync(() => {
          index = turn.index
        })
      ),
      Effect.repeat({ until: (turn) => turn.turn._tag === "Done" }),
      Effect.orDie // consulWriteRetry never gives up
    )
    if (done.turn._tag !== "Done") return yield* Effect.die("a pre-deploy turn ended without an outcome")
    return done.turn.outcome
  })
