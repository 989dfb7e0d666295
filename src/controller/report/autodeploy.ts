/**
 * Auto-deploy: when AppConfig.autoDeploy is on and a release of the deploy branch (any
 * release, for a KV-only app) is ready on every expected node, the leader writes the
 * DeploySpec, once per sha, unless the app is locked or pinned (the check run then
 * says why it waits).
 *
 * "Once" is enforced in Consul, not in memory: the DeploySpec is written in one
 * transaction with a cas on the deploy key (so it only replaces the generation this
 * decision was made from) and, for repo-backed apps, a cas on the commit's
 * GitHubRecord setting `autoDeployedAt`. A release is only a candidate when it was
 * created after the current DeploySpec was written, so an operator's later deploy or
 * rollback is never overridden by an older ready release.
 */
import * as Effect from "effect/Effect"
import { lockInForce } from "../../spec/documents.ts"
import type { GitHubRecord } from "../../spec/github-record.ts"
import type { Keys } from "../../spec/keys.ts"
import { shortSha } from "../../spec/names.ts"
import { requestAutoDeploy } from "../../state/writes.ts"
import { expectedNodes, releaseView } from "./release-view.ts"
import type { AppSnapshot } from "./snapshot.ts"
import { branchOf } from "./targets.ts"

export const AUTO_DEPLOY_BY = "sacar (auto-deploy)"

export type AutoDeployDecision =
  | { readonly kind: "none" }
  | { readonly kind: "held"; readonly sha: string; readonly reason: string }
  | { readonly kind: "deploy"; readonly sha: string }

/** Pure: what auto-deploy should do for one app right now. */
export const decideAutoDeploy = (app: AppSnapshot, nodes: ReadonlySet<string>, now: Date): AutoDeployDecision => {
  const config = app.config
  if (config === undefined || !config.autoDeploy) return { kind: "none" }
  const expected = expectedNodes(config, nodes)
  const deployedAt = app.deploy?.modifyIndex ?? 0
  const candidates = [...app.releases]
    .filter(([sha, release]) => {
      if (release.createIndex <= deployedAt || app.deploy?.doc.sha === sha) return false
      const record = app.github.get(sha)?.doc
      if (record?.autoDeployedAt !== undefined) return false
      if (config.repo !== undefined && branchOf(record, release.doc) !== config.branch) return false
      return releaseView(sha, expected, app.statuses).allReady
    })
    .sort(([, a], [, b]) => b.createIndex - a.createIndex)
  const newest = candidates[0]
  if (newest === undefined) return { kind: "none" }
  const [sha] = newest
  if (app.lock !== undefined && lockInForce(app.lock, now)) {
    return { kind: "held", sha, reason: `locked by ${app.lock.by}: ${app.lock.reason}` }
  }
  if (app.pin !== undefined) return { kind: "held", sha, reason: `pinned at ${shortSha(app.pin.sha)} by ${app.pin.by}` }
  return { kind: "deploy", sha }
}

/** Writes the DeploySpec for `sha` if nobody changed the deploy key or the record meanwhile. */
export const autoDeploy = (keys: Keys, app: AppSnapshot, sha: string, now: Date) =>
  Effect.gen(function*() {
    const at = now.toISOString()
    const repo = app.config?.repo
    const recordOf = (repo: string) => {
      const record = app.github.get(sha)
      const release = app.releases.get(sha)?.doc
      const base: GitHubRecord = record?.doc ?? {
        repo,
        sha,
        createdAt: at,
        ...(release?.ref !== undefined ? { ref: release.ref } : {})
      }
      return { doc: { ...base, autoDeployedAt: at }, index: record?.modifyIndex ?? 0 }
    }
    const written = yield* requestAutoDeploy(
      keys,
      app.app,
      { spec: { sha, requestedBy: AUTO_DEPLOY_BY, requestedAt: at }, index: app.deploy?.modifyIndex ?? 0 },
      repo === undefined ? undefined : recordOf(repo)
    )
    if (written) {
      yield* Effect.logInfo(`auto-deploy: ${app.app} ${shortSha(sha)} is ready on every node; DeploySpec written`)
      return true
    }
    yield* Effect.logDebug(
      `auto-deploy: ${app.app} ${shortSha(sha)}: someone changed the deploy or the record first; looking again`
    )
    return false
  })
