/**
 * One release's preparation on this node, as the status sees it: `prepareRelease`
 * (steps/pipeline.ts, the steps) does the work; this turns its step events into the
 * release's NodeStatus entry (phase, per-step ms, message, log tail, attempt, spec
 * index, times) and decides what a failure means. A failure a person must fix ends
 * in `failed` (retried only when the ReleaseSpec is rewritten); one that may heal by
 * itself (the artifact store down, another process on the release) is retried here
 * with a growing pause, the status saying so.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { ArtifactStore } from "../artifacts/store.ts"
import { nowIso } from "../common/time.ts"
import type { Python } from "../python/python.ts"
import { resolveArtifact } from "../spec/artifact.ts"
import type { AppConfig, ReleaseSpec, ReleaseStatus } from "../spec/documents.ts"
import { durationMillis, formatDuration } from "../spec/duration.ts"
import type { StatusWriter } from "./status.ts"
import { prepareRelease } from "./steps/pipeline.ts"
import type { ReleaseError } from "./steps/pipeline.ts"

export interface ReleaseInput {
  readonly app: string
  readonly sha: string
  readonly node: string
  readonly root: string
  readonly defaultPython: string
  readonly config: AppConfig
  readonly spec: ReleaseSpec
  readonly specIndex: number
  readonly attempt: number
  readonly status: StatusWriter
  /** The pause before trying again should this run fail in a way that may heal. */
  readonly retryMs: number
  /** When this run was taken up (the entry's `startedAt`, set by `markStarting`). */
  readonly startedAt: string
}

/** How a preparation ended: done (ready or failed), or to be tried again after a pause. */
export type ReleaseOutcome = { readonly _tag: "Done" } | { readonly _tag: "RetryIn"; readonly ms: number }

export const RETRY_FIRST_MS = 5_000
const RETRY_MAX_MS = 5 * 60_000

/** The pause after the one that just ran out: doubling, capped at 5 minutes. */
export const nextRetryMs = (ms: number) => Math.min(RETRY_MAX_MS, ms * 2)

const DONE: ReleaseOutcome = { _tag: "Done" }

/**
 * The release's entry as a run is taken up (pending, "starting"): the first thing the
 * node reports about it, recorded by the action that starts the run before the run's
 * own fiber does any work, so the status writer sends it at once (status.ts).
 */
export const markStarting = (input: ReleaseInput): Effect.Effect<void> =>
  input.status.update((s) => ({
    ...s,
    releases: {
      ...s.releases,
      [input.sha]: {
        phase: "pending",
        message: input.attempt > 1 ? `attempt ${input.attempt}` : "starting",
        attempt: input.attempt,
        specIndex: input.specIndex,
        startedAt: input.startedAt,
        steps: {}
      }
    }
  }))

/**
 * Prepares once, after `markStarting`. A failure that may heal is not waited out here:
 * the release keeps its step and a message saying when it is tried again, and the
 * outcome asks the loop to plan it again after the pause, so the wait holds no
 * SACAR_CONCURRENCY slot.
 */
export const runRelease = (input: ReleaseInput): Effect.Effect<ReleaseOutcome, never, ArtifactStore | Python> => {
  const { app, sha, status, startedAt } = input
  const update = (f: (r: ReleaseStatus) => ReleaseStatus) =>
    status.update((s) => {
      const before = s.releases[sha] ?? { phase: "pending", attempt: input.attempt, steps: {} }
      return { ...s, releases: { ...s.releases, [sha]: f(before) } }
    })
  const finish = (entry: Omit<ReleaseStatus, "attempt" | "specIndex" | "startedAt" | "finishedAt">) =>
    Effect.flatMap(nowIso, (finishedAt) =>
      update((r) => ({
        ...entry,
        steps: { ...r.steps, ...entry.steps },
        attempt: input.attempt,
        specIndex: input.specIndex,
        startedAt: r.startedAt ?? startedAt,
        finishedAt
      })))
      .pipe(Effect.andThen(status.flush))
  const failed = (message: string, log: string) =>
    finish({ phase: "failed", message, steps: {}, ...(log === "" ? {} : { log }) }).pipe(
      Effect.andThen(Effect.logWarning(`prepare ${app} ${sha}: failed: ${message}`))
    )

  const artifact = resolveArtifact(app, sha, input.spec, input.config)
  if (Result.isFailure(artifact)) return failed(artifact.failure.message, "").pipe(Effect.as(DONE))

  const attemptOnce = prepareRelease(
    {
      app,
      sha,
      node: input.node,
      root: input.root,
      artifact: artifact.success,
      prepareTimeoutMs: durationMillis(input.config.prepareTimeout),
      defaultPython: input.defaultPython
    },
    (step, event) => {
      // One log line per step event, with the step as a field next to app and sha.
      switch (event._tag) {
        case "Started":
          return update(({ message: _shown, ...r }) => ({ ...r, phase: step })).pipe(
            Effect.andThen(Effect.logDebug(`${step} started`, { step }))
          )
        case "Finished":
          return update((r) => ({ ...r, steps: { ...r.steps, [step]: { ms: event.ms } } })).pipe(
            Effect.andThen(
              Effect.logInfo(`${step} ${event.skipped ? "already done" : `done in ${formatDuration(event.ms)}`}`, {
                step,
                ms: event.ms
              })
            )
          )
        case "Failed":
          return update((r) => ({ ...r, steps: { ...r.steps, [step]: { ms: event.ms } } })).pipe(
            Effect.andThen(Effect.logWarning(`${step} failed: ${event.error.message}`, { step, ms: event.ms }))
          )
      }
    }
  )

  const run: Effect.Effect<ReleaseOutcome, never, ArtifactStore | Python> = attemptOnce.pipe(
    Effect.matchCauseEffect({
      onSuccess: (prepared) =>
        finish({ phase: "ready", message: prepared.message, steps: prepared.steps }).pipe(
          Effect.andThen(Effect.logInfo(`prepare ${app} ${sha}: ready: ${prepared.message}`)),
          Effect.as(DONE)
        ),
      onFailure: (cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
        const error = Cause.findErrorOption(cause)
        if (error._tag === "None") {
          const text = Cause.pretty(cause).split("\n")[0] ?? "unexpected error"
          return Effect.logError(`preparing ${app} ${sha} died`, Cause.pretty(cause)).pipe(
            Effect.andThen(failed(`internal error while preparing: ${text}`, "")),
            Effect.as(DONE)
          )
        }
        const e: ReleaseError = error.value
        if (!e.retryable) return failed(e.message, e.log).pipe(Effect.as(DONE))
        return update((r) => ({
          ...r,
          message: `${e.message}; trying again in ${formatDuration(input.retryMs)}`,
          ...(e.log === "" ? {} : { log: e.log })
        })).pipe(Effect.as<ReleaseOutcome>({ _tag: "RetryIn", ms: input.retryMs }))
      }
    })
  )

  return run.pipe(Effect.annotateLogs({ app, sha, node: input.node }))
}
