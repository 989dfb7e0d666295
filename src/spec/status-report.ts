/**
 * The shape of `sacar status --json` and of the controller's `GET /v1/apps/<app>`:
 * the app's documents as they are in KV, grouped, so scripts decode them with the
 * same schemas Sacar uses.
 */
import * as Schema from "effect/Schema"
import { AppConfig, DeploySpec, LockDoc, NodeStatus, PinDoc, ReleaseSpec } from "./documents.ts"
import { AppName, Sha } from "./names.ts"

export const AppStatusReport = Schema.Struct({
  app: AppName,
  config: Schema.NullOr(AppConfig),
  releases: Schema.Array(Schema.Struct({ sha: Sha, modifyIndex: Schema.Number, spec: ReleaseSpec })),
  deploy: Schema.NullOr(Schema.Struct({ generation: Schema.Number, spec: DeploySpec })),
  expectedNodes: Schema.Array(Schema.String),
  nodes: Schema.Record(Schema.String, NodeStatus),
  lock: Schema.NullOr(LockDoc),
  /** Whether `lock` is in force at the time of the report. */
  locked: Schema.Boolean,
  pin: Schema.NullOr(PinDoc),
  problems: Schema.Array(Schema.String)
})
export type AppStatusReport = typeof AppStatusReport.Type

export const StatusReport = Schema.Struct({ apps: Schema.Array(AppStatusReport) })
export type StatusReport = typeof StatusReport.Type
