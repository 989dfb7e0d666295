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
import { Effect, Result, Schedule } from "effect"
import { Consul } from "../consul/Consul.ts"
import type { ConsulError } from "../consul/Consul.ts"
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
  /** Called when this node starts waiting on another's run, or starts its own. */
  readonly onProgress: (message: string) => Effect.Effect<void>
}

const nowIso = () => new Date().toISOString()

type Turn = { readonly _tag: "Done"; readonly outcome: PredeployOutcome } | { readonly _tag: "Again" }

/** This node's run, once it holds the lock. Returns Again when the lock was lost mid-run. */
const runHolding = (input: PredeployInput, sessionId: string, lost: Effect.Effect<string>, running: PredeployDoc) =>
  Effect.gen(function*() {
    const consul = yield* Consul
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
    const finished: PredeployDoc = Result.isSuccess(raced.r)
      ? {
        ...running,
        phase: "succeeded",
        finishedAt: nowIso(),
        message: raced.r.success.message,
        log: raced.r.success.log
      }
      : {
        ...running,
        phase: "failed",
        finishedAt: nowIso(),
        message: raced.r.failure.message,
        log: raced.r.failure.log
      }
    // The result must land: a lost write would make another node run it again.
    const recorded = yield* consul.put(input.key, encodeDocument(PredeployDoc, finished), {
      release: sessionId,
      flags: LOCK_FLAGS
    }).pipe(
      Effect.retry({ times: 10, schedule: Schedule.spaced("500 millis"), while: (e) => e._tag === "ConsulUnavailable" })
    )
    if (!recorded) return { _tag: "Again" } as Turn
    return {
      _tag: "Done",
      outcome: { _tag: finished.phase === "succeeded" ? "Succeeded" : "Failed", doc: finished }
    } as Turn
  })

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

    // Free: take it, unless it changed since this read.
    return yield* Effect.scoped(Effect.gen(function*() {
      const session = yield* openSession({
        name: ownName,
        ttl: PREDEPLOY_SESSION_TTL,
        behavior: "release",
        // At least the TTL: see the comment at the top.
        lockDelay: PREDEPLOY_SESSION_TTL,
        node
      })
      const running: PredeployDoc = {
        generation: input.generation,
        sha,
        phase: "running",
        node,
        startedAt: nowIso(),
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
    let index = 0
    let failures = 0
    while (true) {
      const attempt = yield* Effect.result(takeTurn(input, index))
      if (Result.isFailure(attempt)) {
        failures += 1
        yield* Effect.logWarning(`pre-deploy of generation ${input.generation}: ${attempt.failure.message}; retrying`)
        yield* Effect.sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)))
        index = 0
        continue
      }
      failures = 0
      if (attempt.success.turn._tag === "Done") return attempt.success.turn.outcome
      index = attempt.success.index
    }
  })
