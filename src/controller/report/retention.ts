/**
 * ReleaseSpec retention: keep the newest `keepReleases` releases that became ready
 * on every expected node and remove older ready ones, never removing
 *   - the deploy target (the current DeploySpec's sha),
 *   - any node's `current` or `previous` release (rollback needs it on disk),
 *   - the pinned release,
 *   - a release that is not ready everywhere (still preparing, or failed: a person
 *     may retry it; failures do not count against keepReleases). Failed releases go
 *     after their own TTL (pruning.ts).
 * Reconcilers delete from disk what is no longer desired, under the same rule.
 *
 * A removed release's GitHubRecord goes with it, in the same transaction: its check
 * run already shows its final state ("Ready to deploy"), and a record without its
 * release would render as "Waiting for build artifact" again. A later click on its
 * Deploy button still works: the webhook recreates the record, and deploying a sha
 * without a ReleaseSpec prepares it first.
 */
import * as Effect from "effect/Effect"
import type { Keys } from "../../spec/keys.ts"
import { shortSha } from "../../spec/names.ts"
import { pruneRelease } from "../../state/writes.ts"
import { protectedReleases } from "./pruning.ts"
import { expectedNodes, releaseView } from "./release-view.ts"
import type { AppSnapshot } from "./snapshot.ts"

/** Pure: the shas whose ReleaseSpec should go now. */
export const releasesToRemove = (app: AppSnapshot, nodes: ReadonlySet<string>): ReadonlyArray<string> => {
  const config = app.config
  if (config === undefined) return []
  const expected = expectedNodes(config, nodes)
  const ready = [...app.releases]
    .filter(([sha]) => releaseView(sha, expected, app.statuses).allReady)
    .sort(([, a], [, b]) => b.createIndex - a.createIndex)
    .map(([sha]) => sha)
  const kept = protectedReleases(app)
  return ready.slice(config.keepReleases).filter((sha) => !kept.has(sha))
}

/**
 * Deletes one release (and its record) unless either changed since the snapshot: a
 * retry or a webhook that just touched them wins. `why` ends the log line.
 */
export const deleteReleaseSpec = (keys: Keys, app: AppSnapshot, sha: string, why: string) =>
  Effect.gen(function*() {
    const release = app.releases.get(sha)
    if (release === undefined) return false
    const removed = yield* pruneRelease(keys, app.app, sha, {
      release: release.modifyIndex,
      record: app.github.get(sha)?.modifyIndex
    })
    if (removed) {
      yield* Effect.logInfo(`removed release ${app.app} ${shortSha(sha)}: ${why}`)
      return true
    }
    return false
  })
