/**
 * Reads and writes of `<prefix>/<app>/github/<sha>`, the controller's per-commit
 * memory (spec/github-record.ts). Webhook handlers on any replica and the leader
 * write the same record, so every change is a read-modify-write under cas that keeps
 * the other writers' fields. A record that does not decode reads as absent and is
 * replaced: the leader cannot use it either.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { nowIso } from "../common/time.ts"
import { Consul } from "../consul/consul.ts"
import type { ConsulError, KvEntry } from "../consul/consul.ts"
import { decodeDocument, encodeDocument } from "../spec/decode.ts"
import { GitHubRecord } from "../spec/github-record.ts"
import type { Keys } from "../spec/keys.ts"
import { casUpdate, type WriteConflict } from "./cas.ts"

const decodeRecord = (key: string, entry: KvEntry | undefined): GitHubRecord | undefined => {
  if (entry === undefined) return undefined
  const decoded = decodeDocument(GitHubRecord, "GitHubRecord", key, entry.value)
  return Result.isSuccess(decoded) ? decoded.success : undefined
}

/** The record as it is in Consul right now (not as the last snapshot saw it). */
export const readRecord = (
  keys: Keys,
  app: string,
  sha: string
): Effect.Effect<GitHubRecord | undefined, ConsulError, Consul> =>
  Effect.gen(function*() {
    const key = keys.github(app, sha)
    return decodeRecord(key, (yield* (yield* Consul).get(key)).value)
  })

export type RecordChange =
  /** The record as it should be; undefined: leave it as it is. */
  (current: GitHubRecord | undefined) => GitHubRecord | undefined

/**
 * Applies `change` to the record under cas, again when someone else wrote in between.
 * Returns the record as it now is, or undefined when `change` declined (for example
 * because retention deleted the record meanwhile). WriteConflict when other writers
 * kept winning: a webhook answers 503 so GitHub redelivers, the leader tries again later.
 */
export const updateRecord = (
  keys: Keys,
  app: string,
  sha: string,
  change: RecordChange
): Effect.Effect<GitHubRecord | undefined, ConsulError | WriteConflict, Consul> =>
  Effect.suspend(() => {
    const key = keys.github(app, sha)
    let next: GitHubRecord | undefined
    return casUpdate(key, (entry) => {
      const current = decodeRecord(key, entry)
      next = change(current)
      if (next === undefined) return undefined
      const text = encodeDocument(GitHubRecord, next)
      // Compared as documents: a record formatted by hand is not rewritten for its spacing.
      return current !== undefined && text === encodeDocument(GitHubRecord, current) ? undefined : text
    }).pipe(Effect.map(() => next))
  })

/** What a webhook delivery says about a commit. */
export interface CommitSeen {
  readonly repo: string
  readonly sha: string
  readonly ref?: string | undefined
  readonly branch?: string | null | undefined
  readonly installationId?: number | undefined
  /**
   * A push to the app's deploy branch: the commit is on that branch now, whatever an
   * earlier delivery (a merge-queue or feature branch) recorded first.
   */
  readonly onDeployBranch?: boolean | undefined
}

/**
 * Records that the controller should report on this commit (push, check_suite),
 * creating the record from `seen` when absent, then applies `change`.
 */
export const recordCommit = (
  keys: Keys,
  app: string,
  seen: CommitSeen,
  change: (record: GitHubRecord) => GitHubRecord = (record) => record
) =>
  Effect.flatMap(nowIso, (now) =>
    updateRecord(keys, app, seen.sha, (existing) => {
      const base: GitHubRecord = existing ?? { repo: seen.repo, sha: seen.sha, createdAt: now }
      // Fill what the record lacks; what a delivery says never erases what is known,
      // except a push to the deploy branch, which settles the commit's branch.
      const settles = seen.onDeployBranch === true
      return change({
        ...base,
        ...((base.ref === undefined || settles) && seen.ref !== undefined ? { ref: seen.ref } : {}),
        ...((base.branch === undefined || settles) && seen.branch !== undefined ? { branch: seen.branch } : {}),
        ...(base.installationId === undefined && seen.installationId !== undefined
          ? { installationId: seen.installationId }
          : {})
      })
    }))
