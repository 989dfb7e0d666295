/** Snapshot -> the JSON report of `sacar status --json` and `GET /v1/apps/<app>`. */
import { Schema } from "effect"
import { AppStatusReport } from "../spec/status-report.ts"
import type { AppSnapshot } from "./snapshot.ts"

export const toReport = (s: AppSnapshot): unknown =>
  Schema.encodeSync(AppStatusReport)({
    app: s.app,
    config: s.config ?? null,
    releases: s.releases.map((r) => ({ sha: r.sha, modifyIndex: r.modifyIndex, spec: r.spec })),
    deploy: s.deploy ?? null,
    expectedNodes: [...s.expectedNodes],
    nodes: { ...s.statuses },
    lock: s.lock ?? null,
    pin: s.pin ?? null,
    problems: [...s.problems]
  })
