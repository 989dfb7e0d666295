/**
 * What the leader deletes so that KV stays bounded when nothing else would delete it,
 * decided from one Snapshot and the clock alone (pure; the loop does the deleting):
 *
 *   - a commit's GitHubRecord with no release, once its check run has ended and the
 *     record saw no activity for `recordTtlMs` (SACAR_RECORD_TTL). A run waiting for
 *     an artifact that never comes ends (neutral) after `artifactWaitMs`
 *     (SACAR_ARTIFACT_WAIT), which is that activity; so an abandoned commit goes
 *     queued -> neutral -> deleted, and its run never stays queued on GitHub;
 *   - a failed release (its check run shows failure or timed_out) with no activity for
 *     `failedReleaseTtlMs` (SACAR_FAILED_RELEASE_TTL): its ReleaseSpec and its record.
 *     Retention (retention.ts) only ever removes releases that became ready, so
 *     without this every failed commit would stay in KV, and on every node's watch,
 *     for good.
 *
 * "Activity" is the newest time the documents carry: a record's createdAt, when a
 * state was last reported for it, a refusal, an auto-deploy; a release's createdAt
 * (a retry rewrites it) and each node's start and end of its attempt. A change that
 * carries no time of its own (a push that moves the commit to the deploy branch)
 * changes what the check run shows, so the report of it is the activity.
 */
import { durationMillis } from "../../spec/duration.ts"
import type { GitHubRecord } from "../../spec/github-record.ts"
import { expectedNodes, releaseView } from "./release-view.ts"
import type { ReleaseView } from "./release-view.ts"
import type { AppSnapshot } from "./snapshot.ts"
import type { CommitTarget } from "./targets.ts"

const HOUR_MS = 3_600_000

export interface PruningSettings {
  /** SACAR_FAILED_RELEASE_TTL: a failed release with no activity this long is removed. */
  readonly failedReleaseTtlMs: number
  /** SACAR_RECORD_TTL: a record with no release and an ended run, with no activity this long, is removed. */
  readonly recordTtlMs: number
  /** SACAR_ARTIFACT_WAIT: a commit waits this long for its artifact before its run ends neutral. */
  readonly artifactWaitMs: number
}

export const DEFAULT_PRUNING: PruningSettings = {
  failedReleaseTtlMs: 72 * HOUR_MS,
  recordTtlMs: 7 * 24 * HOUR_MS,
  artifactWaitMs: 24 * HOUR_MS
}

const timeOf = (text: string | undefined): number | undefined => {
  const ms = text === undefined ? NaN : Date.parse(text)
  return Number.isFinite(ms) ? ms : undefined
}

const newest = (times: ReadonlyArray<number | undefined>): number | undefined => {
  const known = times.filter((t): t is number => t !== undefined)
  return known.length === 0 ? undefined : Math.max(...known)
}

/** The newest time a commit's record shows something happening to it. */
export const recordActivity = (doc: GitHubRecord): number | undefined =>
  newest([doc.createdAt, doc.reported?.at, doc.refused?.at, doc.autoDeployedAt].map(timeOf))

/**
 * When the record of a commit that never got a release may go: `recordTtlMs` after its
 * last activity, once its run has ended (`runEnded`: GitHub shows it completed, or
 * there is nothing more to send). undefined: never, as things stand.
 */
export const recordExpiry = (target: CommitTarget, runEnded: boolean, recordTtlMs: number): number | undefined => {
  const doc = target.record.doc
  if (target.input.hasRelease || doc.deployment !== undefined || !runEnded) return undefined
  const activity = recordActivity(doc)
  return activity === undefined ? undefined : activity + recordTtlMs
}

/**
 * The judgement the check run shows (render.ts): a node failed the release, or it was
 * not ready everywhere within prepareTimeout of its (re)creation. With no expected node
 * nothing can be judged: a fleet that is away is no failure.
 */
export const releaseFailed = (
  view: ReleaseView,
  createdAt: number | undefined,
  prepareTimeoutMs: number,
  now: number
): boolean =>
  view.expected.length > 0 && !view.allReady &&
  (view.failed.length > 0 || (createdAt !== undefined && now >= createdAt + prepareTimeoutMs))

/** Releases no rule may remove: the deploy target, what any node runs or rolls back to, the pin. */
export const protectedReleases = (app: AppSnapshot): ReadonlySet<string> => {
  const kept = new Set<string>()
  if (app.deploy !== undefined) kept.add(app.deploy.doc.sha)
  if (app.pin !== undefined) kept.add(app.pin.sha)
  for (const status of app.statuses.values()) {
    if (status.current !== null) kept.add(status.current)
    if (status.previous !== undefined && status.previous !== null) kept.add(status.previous)
    if (status.deploy !== null) kept.add(status.deploy.sha)
  }
  return kept
}

/** The newest time the release's spec, its nodes or its record show something happening. */
export const releaseActivity = (app: AppSnapshot, sha: string): number | undefined => {
  const release = app.releases.get(sha)
  const times = [timeOf(release?.doc.createdAt)]
  for (const status of app.statuses.values()) {
    const attempt = status.releases[sha]
    times.push(timeOf(attempt?.startedAt), timeOf(attempt?.finishedAt))
  }
  const record = app.github.get(sha)
  if (record !== undefined) times.push(recordActivity(record.doc))
  return newest(times)
}

/** Pure: the shas of `app`'s failed releases that saw no activity for `failedReleaseTtlMs`. */
export const failedReleasesToPrune = (
  app: AppSnapshot,
  nodes: ReadonlySet<string>,
  now: number,
  failedReleaseTtlMs: number
): ReadonlyArray<string> => {
  const config = app.config
  if (config === undefined) return []
  const expected = expectedNodes(config, nodes)
  const prepareTimeoutMs = durationMillis(config.prepareTimeout)
  const kept = protectedReleases(app)
  return [...app.releases].filter(([sha, release]) => {
    if (kept.has(sha)) return false
    const view = releaseView(sha, expected, app.statuses)
    if (!releaseFailed(view, timeOf(release.doc.createdAt), prepareTimeoutMs, now)) return false
    const activity = releaseActivity(app, sha)
    return activity !== undefined && now - activity >= failedReleaseTtlMs
  }).map(([sha]) => sha)
}
