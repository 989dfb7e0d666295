/**
 * What the nodes recorded for an app's prepares and deploys (`sacar logs`): each
 * node's release attempts and its last deploy, with the output their status keeps
 * (the end of the failing step's output, or of bin/deploy's). Pure over a snapshot;
 * following is re-reading and printing the records that changed.
 */
import { shortSha } from "../spec/names.ts"
import type { AppState } from "../state/snapshot.ts"

export interface LogRecord {
  /** Identifies the record across reads: printed again only when its text changes. */
  readonly id: string
  readonly text: string
}

export interface LogFilter {
  readonly node?: string | undefined
  readonly sha?: string | undefined
}

const body = (log: string | undefined): string[] =>
  (log ?? "").trimEnd().split("\n").filter((l) => l !== "").map((l) => `  ${l}`)

export const logRecords = (s: AppState, filter: LogFilter): ReadonlyArray<LogRecord> => {
  const records: LogRecord[] = []
  for (const node of Object.keys(s.statuses).sort()) {
    if (filter.node !== undefined && node !== filter.node) continue
    const status = s.statuses[node]!
    for (const [sha, r] of Object.entries(status.releases)) {
      if (filter.sha !== undefined && sha !== filter.sha) continue
      const when = r.finishedAt ?? r.startedAt ?? ""
      const head = `== ${node}  prepare ${shortSha(sha)}  attempt ${r.attempt}  ${r.phase}${
        r.message ? `: ${r.message}` : ""
      }${when ? `  (${when})` : ""}`
      records.push({ id: `${node} release ${sha}`, text: [head, ...body(r.log)].join("\n") })
    }
    const d = status.deploy
    if (d !== null && (filter.sha === undefined || d.sha === filter.sha)) {
      const when = d.finishedAt ?? d.startedAt ?? ""
      const head = `== ${node}  deploy ${shortSha(d.sha)}  generation ${d.generation}  ${d.phase}${
        d.message ? `: ${d.message}` : ""
      }${when ? `  (${when})` : ""}`
      records.push({ id: `${node} deploy`, text: [head, ...body(d.log)].join("\n") })
    }
  }
  return records
}
