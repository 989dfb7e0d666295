/**
 * `sacar/<app>/github/<sha>` (internal): the controller's memory of one commit on
 * GitHub. Webhook handlers (any replica) create it and note requests; the leader
 * fills in what it reported, so a restarted or new leader neither duplicates check
 * runs nor misses an update. Written with cas so replicas never lose each other's
 * fields.
 */
import * as Schema from "effect/Schema"
import { Sha } from "./names.ts"

export const ReportedState = Schema.Struct({
  /** Hash of the rendered check run (or commit status): unchanged content is never re-sent. */
  digest: Schema.String,
  at: Schema.String,
  status: Schema.String,
  conclusion: Schema.optionalKey(Schema.String)
})
export type ReportedState = typeof ReportedState.Type

export const DeploymentRecord = Schema.Struct({
  /** The DeploySpec generation (ModifyIndex) this GitHub Deployment mirrors. */
  generation: Schema.Number,
  id: Schema.optionalKey(Schema.Number),
  /** Last deployment status sent: in_progress, success or failure. */
  state: Schema.optionalKey(Schema.String)
})
export type DeploymentRecord = typeof DeploymentRecord.Type

export const GitHubRecord = Schema.Struct({
  repo: Schema.String,
  sha: Sha,
  ref: Schema.optionalKey(Schema.String),
  branch: Schema.optionalKey(Schema.NullOr(Schema.String)),
  installationId: Schema.optionalKey(Schema.Number),
  createdAt: Schema.String,
  checkRunId: Schema.optionalKey(Schema.Number),
  reported: Schema.optionalKey(ReportedState),
  deployment: Schema.optionalKey(DeploymentRecord),
  /** Set once the leader wrote a DeploySpec for this sha on its own (auto-deploy). */
  autoDeployedAt: Schema.optionalKey(Schema.String),
  /** A deploy request the controller turned down (locked app), shown in the check run. */
  refused: Schema.optionalKey(Schema.Struct({ reason: Schema.String, by: Schema.String, at: Schema.String }))
})
export type GitHubRecord = typeof GitHubRecord.Type
