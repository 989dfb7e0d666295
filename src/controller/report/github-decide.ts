/**
 * What the leader should send to GitHub for one commit or one deploy generation,
 * decided without I/O: given the rendered view, what was last sent, the coalescing
 * window, the backoff and parking state of earlier failures, and the time, each
 * function returns the GitHub operations to make (or when to look again).
 * github-report.ts carries them out and records what was sent.
 *
 * - A check run is sent only when its digest differs from what was last reported,
 *   and at most once per gap (pacing.ts), unless its phase changed. One that completed
 *   and must show progress again is a new run.
 * - A Deployment mirrors the app's current deploy generation: created (or an earlier
 *   create adopted) once the `deployment` webhook had its grace to claim it, then
 *   in_progress and the final state, each once. Older generations still in progress
 *   are marked inactive.
 * - A failed call backs off (2 s doubling to a minute); one GitHub will refuse every
 *   time is parked for an hour.
 */
import type { DeploymentRecord, GitHubRecord } from "../../spec/github-record.ts"
import { shortSha } from "../../spec/names.ts"
import { phaseOf, updateGap } from "./pacing.ts"
import type { DeployState, DeployView } from "./release-view.ts"
import { digestOf } from "./render.ts"
import type { CheckView, CommitStatusView } from "./render.ts"

/** A new DeploySpec generation waits this long for the `deployment` webhook to claim it. */
export const DEPLOYMENT_GRACE_MS = 3_000
const RETRY_BASE_MS = 2_000
const RETRY_MAX_MS = 60_000
/** How long an error GitHub will answer the same way every time waits before another try. */
const PARKED_MS = 60 * 60_000

/** What was last sent for one commit (by this term, or as its record says). */
export interface Sent {
  readonly digest: string
  readonly at: number
  readonly status: string
  readonly checkRunId: number | undefined
  /** pacing.ts phaseOf; undefined when only the record (another term) says what was sent. */
  readonly phase?: string | undefined
}

/** The newer of what this replica sent and what the record says was sent. */
export const lastReported = (mine: Sent | undefined, record: GitHubRecord): Sent | undefined => {
  const recorded = record.reported === undefined
    ? undefined
    : {
      digest: record.reported.digest,
      at: Date.parse(record.reported.at) || 0,
      status: record.reported.status,
      checkRunId: record.checkRunId
    }
  if (mine === undefined) return recorded
  if (recorded === undefined) return mine
  return recorded.at > mine.at ? recorded : { ...mine, checkRunId: mine.checkRunId ?? record.checkRunId }
}

// ---------------------------------------------------------------------------------
// Check runs and commit statuses

export interface CheckRunInput {
  readonly view: CheckView
  /** lastReported of the commit. */
  readonly last: Sent | undefined
  /** The check run id the commit's record names. */
  readonly recordedId: number | undefined
  /** When the release began preparing (the gap between updates widens with its age). */
  readonly startedAt: number | undefined
  readonly failedNodes: number
  readonly coalesceMs: number
  readonly now: number
}

export type CheckRunDecision =
  /** GitHub shows this already. */
  | { readonly _tag: "Unchanged" }
  /** Changed, but within the gap since the last send: look again at `until`. */
  | { readonly _tag: "Wait"; readonly until: number }
  /** Update the known run. */
  | { readonly _tag: "Update"; readonly checkRunId: number; readonly digest: string; readonly phase: string }
  /**
   * No run known (or a completed one must show progress again, `reopen`): look for one
   * an earlier create made (other than `previousId` when reopening) and adopt it, else create.
   */
  | {
    readonly _tag: "Open"
    readonly reopen: boolean
    readonly previousId: number | undefined
    readonly digest: string
    readonly phase: string
  }

export const decideCheckRun = (input: CheckRunInput): CheckRunDecision => {
  const { view, last, now } = input
  const digest = digestOf(view)
  const checkRunId = last?.checkRunId ?? input.recordedId
  if (last !== undefined && last.digest === digest && checkRunId !== undefined) return { _tag: "Unchanged" }
  const phase = phaseOf(view, input.failedNodes)
  const gap = updateGap(input.coalesceMs, input.startedAt, now)
  if (last !== undefined && last.phase === phase && now - last.at < gap) return { _tag: "Wait", until: last.at + gap }
  // A run that completed and must show progress again (a retried release) is a new
  // run, as GitHub's own re-runs are: a completed run does not go back to in progress.
  const reopen = last?.status === "completed" && view.status !== "completed"
  if (checkRunId === undefined || reopen) return { _tag: "Open", reopen, previousId: checkRunId, digest, phase }
  return { _tag: "Update", checkRunId, digest, phase }
}

export type CommitStatusDecision =
  | { readonly _tag: "Unchanged" }
  | { readonly _tag: "Wait"; readonly until: number }
  | { readonly _tag: "Send"; readonly digest: string }

/** Token mode: one commit status per app and commit, sent when it changed, at most once per `coalesceMs`. */
export const decideCommitStatus = (
  status: CommitStatusView,
  last: Sent | undefined,
  coalesceMs: number,
  now: number
): CommitStatusDecision => {
  const digest = digestOf(status)
  if (last !== undefined && last.digest === digest) return { _tag: "Unchanged" }
  if (last !== undefined && now - last.at < coalesceMs) return { _tag: "Wait", until: last.at + coalesceMs }
  return { _tag: "Send", digest }
}

// ---------------------------------------------------------------------------------
// Deployments

/** A commit's record, as far as its Deployment goes. */
export interface RecordedDeployment {
  readonly sha: string
  readonly repo: string
  readonly installationId: number | undefined
  readonly deployment: DeploymentRecord | undefined
}

export interface DeploymentInput {
  readonly app: string
  readonly deploy: Pick<DeployView, "generation" | "sha" | "state" | "description" | "requestedBy">
  /** The Deployment of this generation as this term sent it, else as the record says; undefined: none. */
  readonly mirrored: { readonly id?: number | undefined; readonly state?: string | undefined } | undefined
  /** When this term first saw the generation without a Deployment (now, the first time). */
  readonly firstSeen: number
  /** Every commit record of the app: older generations may be left in progress. */
  readonly records: ReadonlyArray<RecordedDeployment>
  /** Older generations this term has marked inactive already. */
  readonly retired: ReadonlySet<number>
  readonly now: number
}

export type DeploymentOp =
  /** Mark an older generation's Deployment, left in progress, inactive. */
  | {
    readonly _tag: "Retire"
    readonly sha: string
    readonly repo: string
    readonly installationId: number | undefined
    readonly deploymentId: number
    readonly generation: number
    readonly description: string
  }
  /** The `deployment` webhook may still claim the generation: look again at `until`. */
  | { readonly _tag: "Wait"; readonly until: number }
  /** Adopt the Deployment an earlier create made (the payload marks it), else create one. */
  | { readonly _tag: "Create"; readonly description: string; readonly payload: MirrorPayload }
  /** Send a deployment status. */
  | { readonly _tag: "SetState"; readonly state: DeployState; readonly description: string }

export type MirrorPayload = {
  readonly sacar: { readonly app: string; readonly generation: number; readonly requestedBy?: string }
}

export interface DeploymentDecision {
  readonly ops: ReadonlyArray<DeploymentOp>
  /** To remember as when the generation was first seen without a Deployment. */
  readonly firstSeen: number | undefined
}

export const decideDeployment = (input: DeploymentInput): DeploymentDecision => {
  const { app, deploy, mirrored, now } = input
  const ops: Array<DeploymentOp> = []
  // A Deployment whose generation was replaced by a newer DeploySpec before it
  // finished would stay "in progress" on GitHub forever: it is marked inactive, once.
  for (const record of input.records) {
    const d = record.deployment
    if (d?.id === undefined || d.generation >= deploy.generation) continue
    if (d.state !== undefined && d.state !== "in_progress") continue
    if (input.retired.has(d.generation)) continue
    ops.push({
      _tag: "Retire",
      sha: record.sha,
      repo: record.repo,
      installationId: record.installationId,
      deploymentId: d.id,
      generation: d.generation,
      description: `superseded by deploy generation ${deploy.generation} before it finished`
    })
  }
  let state = mirrored?.state
  let firstSeen: number | undefined
  if (mirrored?.id === undefined) {
    firstSeen = input.firstSeen
    if (now - input.firstSeen < DEPLOYMENT_GRACE_MS) {
      ops.push({ _tag: "Wait", until: input.firstSeen + DEPLOYMENT_GRACE_MS })
      return { ops, firstSeen }
    }
    const by = deploy.requestedBy ? `, ${deploy.requestedBy}` : ""
    ops.push({
      _tag: "Create",
      description: `sacar: ${app} ${shortSha(deploy.sha)} (generation ${deploy.generation}${by})`,
      // The `sacar` key marks the Deployment as a mirror, so its `deployment` webhook is not taken as a new request.
      payload: {
        sacar: {
          app,
          generation: deploy.generation,
          ...(deploy.requestedBy ? { requestedBy: deploy.requestedBy } : {})
        }
      }
    })
    state = undefined
  }
  // Every deployment shows in_progress before its outcome.
  const sequence: ReadonlyArray<DeployState> = state === undefined && deploy.state !== "in_progress"
    ? ["in_progress", deploy.state]
    : state === deploy.state
    ? []
    : [deploy.state]
  for (const s of sequence) {
    ops.push({
      _tag: "SetState",
      state: s,
      description: s === "in_progress" && deploy.state !== "in_progress" ? "deploying" : deploy.description
    })
  }
  return { ops, firstSeen }
}

/** Whether a Deployment's payload (an object, or JSON text) marks it as the mirror of `app`'s `generation`. */
export const isMirrorOf = (payload: unknown, app: string, generation: number): boolean => {
  let p = payload
  if (typeof p === "string") {
    try {
      p = JSON.parse(p)
    } catch {
      return false
    }
  }
  const sacar = (p as { sacar?: { app?: unknown; generation?: unknown } } | null)?.sacar
  return sacar?.app === app && sacar.generation === generation
}

// ---------------------------------------------------------------------------------
// Failures

/** One key's failures: when it may be tried again, how many in a row, parked or not. */
export interface Failing {
  readonly retryAt: number
  readonly count: number
  readonly parked: boolean
}

/** Undefined: go ahead; else the key is backing off, and `wake` is when to look again (none while parked). */
export const backingOff = (
  failing: Failing | undefined,
  now: number
): { readonly wake: number | undefined } | undefined =>
  failing !== undefined && failing.retryAt > now ? { wake: failing.parked ? undefined : failing.retryAt } : undefined

export interface AfterFailure {
  readonly failing: Failing
  /** When to look again; undefined while parked. */
  readonly wake: number | undefined
  /** "parked": log and count it; "still parked": say nothing (said once); "retry": log the pause. */
  readonly report: "parked" | "still parked" | "retry"
  readonly delayMs: number
}

/**
 * After a failure: one GitHub will refuse every time (`permanent`: 422, a missing
 * permission, an app not installed) is parked for an hour (a permission granted or
 * the App installed meanwhile), else the next try backs off, 2 s doubling to a minute.
 */
export const afterFailure = (previous: Failing | undefined, permanent: boolean, now: number): AfterFailure => {
  const count = (previous?.count ?? 0) + 1
  if (permanent) {
    return {
      failing: { retryAt: now + PARKED_MS, count, parked: true },
      wake: undefined,
      report: previous?.parked === true ? "still parked" : "parked",
      delayMs: PARKED_MS
    }
  }
  const delayMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (count - 1))
  return { failing: { retryAt: now + delayMs, count, parked: false }, wake: now + delayMs, report: "retry", delayMs }
}

/** The earliest of the times asked for that is not past, or undefined. */
export const nextLook = (times: ReadonlyArray<number | undefined>, now: number): number | undefined => {
  const future = times.filter((t): t is number => t !== undefined && t > now - 1)
  return future.length === 0 ? undefined : Math.min(...future)
}
