/**
 * The leader's writes to `<prefix>/<app>/github/<sha>`. Webhook handlers on any
 * replica write the same records (refusals, deployments asked for on GitHub), so
 * every change is a read-modify-write under cas that keeps their fields: the leader
 * only ever sets the fields it owns (checkRunId, reported, deployment state,
 * autoDeployedAt).
 */
import { Effect, Result } from "effect"
import { Consul } from "../../consul/Consul.ts"
import type { ConsulError } from "../../consul/Consul.ts"
import { decodeDocument, encodeDocument } from "../../spec/decode.ts"
import { GitHubRecord } from "../../spec/github-record.ts"
import type { Keys } from "../../spec/keys.ts"

const ATTEMPTS = 8

export type RecordChange =
  /** The record as it should be; undefined: leave it as it is. */
  (current: GitHubRecord | undefined) => GitHubRecord | undefined

/**
 * Applies `change` to the record under cas, retrying when someone else wrote in
 * between. Returns the record written, or undefined when `change` declined (for
 * example because the record was deleted by retention meanwhile).
 */
export const updateRecord = (
  keys: Keys,
  app: string,
  sha: string,
  change: RecordChange
): Effect.Effect<GitHubRecord | undefined, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.github(app, sha)
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const entry = (yield* consul.get(key)).value
      const decoded = entry === undefined ? undefined : decodeDocument(GitHubRecord, "GitHubRecord", key, entry.value)
      const current = decoded !== undefined && Result.isSuccess(decoded) ? decoded.success : undefined
      const next = change(current)
      if (next === undefined) return undefined
      const text = encodeDocument(GitHubRecord, next)
      if (text === entry?.value) return next
      if (yield* consul.put(key, text, { cas: entry?.modifyIndex ?? 0 })) return next
      yield* Effect.sleep(20 * (attempt + 1))
    }
    yield* Effect.logWarning(
      `${key}: changed by other writers ${ATTEMPTS} times in a row; will try again on the next pass`
    )
    return undefined
  })

/** The record as it is in Consul right now (not as the last snapshot saw it). */
export const readRecord = (
  keys: Keys,
  app: string,
  sha: string
): Effect.Effect<GitHubRecord | undefined, ConsulError, Consul> =>
  Effect.gen(function*() {
    const key = keys.github(app, sha)
    const entry = (yield* (yield* Consul).get(key)).value
    if (entry === undefined) return undefined
    const decoded = decodeDocument(GitHubRecord, "GitHubRecord", key, entry.value)
    return Result.isSuccess(decoded) ? decoded.success : undefined
  })
