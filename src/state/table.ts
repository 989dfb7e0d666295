/**
 * The human view of an app: releases by nodes, then each node's deploy state. Pure,
 * so it is tested on its own and redrawn as often as a watch wakes.
 */
import { lockInForce } from "../spec/documents.ts"
import { formatDuration } from "../spec/duration.ts"
import { shortSha } from "../spec/names.ts"
import type { AppSnapshot } from "./snapshot.ts"

const age = (iso: string | undefined, now: Date): string => {
  const at = iso === undefined ? NaN : Date.parse(iso)
  if (Number.isNaN(at)) return "-"
  const s = Math.max(0, Math.round((now.getTime() - at) / 1000))
  return s < 60
    ? `${s}s`
    : s < 3600
    ? `${Math.floor(s / 60)}m`
    : s < 86_400
    ? `${Math.floor(s / 3600)}h`
    : `${Math.floor(s / 86_400)}d`
}

const grid = (rows: ReadonlyArray<ReadonlyArray<string>>): string[] => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd())
}

export const renderApp = (s: AppSnapshot, now: Date): string => {
  const lines: string[] = []
  const c = s.config
  const about = c === undefined
    ? "no valid config"
    : [
      c.repo ? `repo ${c.repo}@${c.branch}` : "KV only",
      `nodes ${c.nodes.join(",")}`,
      c.autoDeploy ? "auto-deploy" : "manual deploy",
      `maxParallel ${c.maxParallel}`
    ].join(", ")
  lines.push(`${s.app}  (${about})`)
  if (s.lock !== undefined && lockInForce(s.lock, now))
    lines.push(`  LOCKED by ${s.lock.by}: ${s.lock.reason}${s.lock.until ? ` until ${s.lock.until}` : ""}`)
  if (s.pin !== undefined)
    lines.push(
      `  PINNED at ${
        shortSha(s.pin.sha)
      } by ${s.pin.by} (${s.pin.reason}); \`sacar unpin ${s.app}\` resumes auto-deploy`
    )
  if (s.deploy !== undefined) {
    const d = s.deploy.spec
    lines.push(
      `  deploy: ${shortSha(d.sha)} generation ${s.deploy.generation}${d.requestedBy ? ` by ${d.requestedBy}` : ""}${
        d.requestedAt ? ` ${age(d.requestedAt, now)} ago` : ""
      }${d.force ? " (forced)" : ""}`
    )
  }
  for (const p of s.problems) lines.push(`  problem: ${p}`)
  const nodes = [...new Set([...s.expectedNodes, ...Object.keys(s.statuses)])].sort()
  for (const [node, status] of Object.entries(s.statuses)) if (status.error) lines.push(`  ${node}: ${status.error}`)
  if (s.releases.length === 0) lines.push("  no releases")
  else {
    const header = ["RELEASE", "AGE", ...nodes.map((n) => (s.expectedNodes.includes(n) ? n : `${n} (gone)`))]
    const rows = s.releases.map((r) => [
      shortSha(r.sha),
      age(r.spec.createdAt, now),
      ...nodes.map((n) => {
        const rs = s.statuses[n]?.releases[r.sha]
        if (rs === undefined) return "-"
        const took = Object.values(rs.steps).reduce((sum, step) => sum + step.ms, 0)
        // Dependencies copied from an earlier release on the node instead of installed.
        const reused = rs.steps.install?.reusedFrom
        return rs.phase === "ready" || rs.phase === "failed"
          ? `${rs.phase} ${formatDuration(took)}${reused === undefined ? "" : ` (deps of ${shortSha(reused)})`}`
          : `${rs.phase} ${age(rs.startedAt, now)}`
      })
    ])
    lines.push(...grid([header, ...rows]).map((l) => `  ${l}`))
    const failures = s.releases.flatMap((r) =>
      nodes.flatMap((n) => {
        const rs = s.statuses[n]?.releases[r.sha]
        return rs?.phase === "failed" ? [`  ${shortSha(r.sha)} on ${n}: ${rs.message ?? "failed"}`] : []
      })
    )
    lines.push(...failures)
  }
  if (nodes.length > 0) {
    const rows = nodes.map((n) => {
      const st = s.statuses[n]
      const d = st?.deploy
      return [
        n,
        st?.current ? shortSha(st.current) : "-",
        d
          ? `${d.phase} ${shortSha(d.sha)} gen ${d.generation}${d.finishedAt ? ` ${age(d.finishedAt, now)} ago` : ""}`
          : "-",
        d?.phase === "failed" && d.message ? d.message : ""
      ]
    })
    lines.push(...grid([["NODE", "CURRENT", "DEPLOY", ""], ...rows]).map((l) => `  ${l}`))
  }
  return lines.join("\n")
}
