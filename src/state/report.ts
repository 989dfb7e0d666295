/** Snapshot -> the JSON report of `sacar status --json` and `GET /v1/apps/<app>`. */
import * as Schema from "effect/Schema"
import { lockInForce } from "../spec/documents.ts"
import { AppStatusReport } from "../spec/status-report.ts"
import type { AppState } from "./snapshot.ts"

/** An app that has nothing at all in KV does not exist (a typo, or a removed app). */
export const appExists = (s: AppState): boolean =>
  s.config !== undefined || s.releases.length > 0 || Object.keys(s.statuses).length > 0 || s.problems.length > 0 ||
  s.deploy !== undefined

/** The report as values (the status page renders these); `now` decides whether the lock is in force. */
export const reportOf = (s: AppState, now: Date): AppStatusReport => ({
  app: s.app,
  config: s.config ?? null,
  releases: s.releases.map((r) => ({ sha: r.sha, modifyIndex: r.modifyIndex, spec: r.spec })),
  deploy: s.deploy ?? null,
  expectedNodes: [...s.expectedNodes],
  nodes: { ...s.statuses },
  lock: s.lock ?? null,
  locked: s.lock !== undefined && lockInForce(s.lock, now),
  pin: s.pin ?? null,
  problems: [...s.problems]
})

/** The report as JSON, encoded by its schema. */
export const toReport = (s: AppState, now: Date): unknown => Schema.encodeSync(AppStatusReport)(reportOf(s, now))
