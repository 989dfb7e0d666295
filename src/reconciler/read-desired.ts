/**
 * What Consul asks of the node, projected from the KV tree (spec/tree.ts): per app,
 * the AppConfig (the last one that decoded, so a typo never tears releases down),
 * every ReleaseSpec with its ModifyIndex, and the DeploySpec with its ModifyIndex as
 * the deploy generation. Values that do not decode become messages naming the key,
 * never exceptions. Pure, apart from remembering the last good AppConfig per app.
 * The app's lock is not part of it: a deploy reads it when it is about to run
 * (deploy.ts, `readAppLock`), since the node does not watch it.
 */
import * as Result from "effect/Result"
import type { KvEntry } from "../consul/consul.ts"
import type { AppConfig, NodeStatus } from "../spec/documents.ts"
import type { Keys } from "../spec/keys.ts"
import { decodedOr, decodeLock, type DecodeMemo, readTree } from "../spec/tree.ts"
import type { AppDesired, AppLock, WantedDeploy, WantedRelease } from "./plan.ts"

/** The app's lock key as a deploy sees it; an empty value (a deleted-then-touched key) is no lock. */
export const readAppLock = (entry: KvEntry): AppLock | undefined => {
  const lock = decodeLock(entry)
  if (lock === undefined) return undefined
  return Result.isSuccess(lock.decoded) ? { doc: lock.decoded.success } : { unreadable: lock.decoded.failure.message }
}

export interface DesiredSnapshot {
  readonly apps: ReadonlyMap<string, AppDesired>
  /** This node's own status per app as last written (when it decodes): where a restart resumes. */
  readonly ownStatus: ReadonlyMap<string, NodeStatus>
}

/**
 * `lastGood` is updated in place: an AppConfig that decodes replaces it, a deleted
 * config forgets it, one that does not decode leaves it as it was. `memo`, when given,
 * keeps each document decoded while its ModifyIndex stays the same: a pass woken by
 * one changed key decodes that key only (the loop runs one per wake-up, and the
 * Schema decoder was a tenth of a reaction's CPU). Keys no longer present are dropped
 * from it, so it holds what the node watches and nothing more.
 */
export const readDesired = (
  keys: Keys,
  node: string,
  entries: ReadonlyArray<KvEntry>,
  lastGood: Map<string, AppConfig>,
  memo?: DecodeMemo
): DesiredSnapshot => {
  const tree = readTree(keys, entries, memo)
  if (memo !== undefined && memo.size > entries.length) {
    const present = new Set(entries.map((e) => e.key))
    for (const key of memo.keys()) if (!present.has(key)) memo.delete(key)
  }
  for (const app of lastGood.keys()) {
    if (tree.apps.get(app)?.config === undefined) lastGood.delete(app)
  }
  const apps = new Map<string, AppDesired>()
  const ownStatus = new Map<string, NodeStatus>()
  for (const [app, found] of tree.apps) {
    const own = decodedOr(found.statuses.get(node))
    if (own !== undefined) ownStatus.set(app, own)
    if (found.config === undefined) continue

    const errors: string[] = []
    const config = found.config.decoded
    if (Result.isSuccess(config)) lastGood.set(app, config.success)
    else errors.push(
        lastGood.has(app)
          ? `${config.failure.message} (still acting on the last AppConfig that decoded)`
          : config.failure.message
      )
    errors.push(...found.misnamed)

    const releases = new Map<string, WantedRelease>()
    for (const [sha, spec] of found.releases) {
      releases.set(
        sha,
        Result.isSuccess(spec.decoded)
          ? { sha, specIndex: spec.modifyIndex, spec: spec.decoded.success }
          : { sha, specIndex: spec.modifyIndex, spec: undefined, specError: spec.decoded.failure.message }
      )
    }

    let deploy: WantedDeploy | undefined
    if (found.deploy !== undefined) {
      const spec = found.deploy.decoded
      if (Result.isSuccess(spec)) {
        deploy = {
          generation: found.deploy.modifyIndex,
          sha: spec.success.sha,
          ...(spec.success.force === true ? { force: true } : {})
        }
      } else errors.push(spec.failure.message)
    }

    apps.set(app, { app, config: lastGood.get(app), configPresent: true, errors, releases, deploy })
  }
  return { apps, ownStatus }
}
