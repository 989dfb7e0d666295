/**
 * The human view of an app: releases by nodes, then each node's deploy state. Pure,
 * so it is tested on its own and redrawn as often as a watch wakes.
 */
import { lockInForce } from "../spec/documents.ts"
import { formatDuration, roughAge } from "../spec/duration.ts"
import { shortSha } from "../spec/names.ts"
import type { AppState } from "./snapshot.ts"

const age = (iso: string | undefined, now: Date): string => roughAge(iso, now) ?? "-"

/** How many of a failing step's last lines the table shows; `sacar logs` shows all of them. */
const LOG_LINES = 5

const logTail = (log: string | undefined): string[] =>
  (log ?? "").trimEnd().split("\n").filter((l) => l.trim() !== "").slice(-LOG_LINES).map((l) => `      | ${l}`)

const grid = (rows: ReadonlyArray<ReadonlyArray<string>>): string[] => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd())
}

export const renderApp = (s: AppState, now: Date): string => {
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
  // A sha the nodes know of without a ReleaseSpec (deployed directly, or its spec deleted)
  // still gets its row: it may be live everywhere.
  const specless = [
    ...new Set([
      ...(s.deploy !== undefined ? [s.deploy.spec.sha] : []),
      ...nodes.flatMap((n) => {
        const st = s.statuses[n]
        return [...(st?.current ? [st.current] : []), ...Object.keys(st?.releases ?? {})]
      })
    ])
  ].filter((sha) => !s.releases.some((r) => r.sha === sha))
  const rowShas = [
    ...s.releases.map((r) => ({ sha: r.sha, label: shortSha(r.sha), createdAt: r.spec.createdAt })),
    ...specless.map((sha) => ({ sha, label: `${shortSha(sha)} (no ReleaseSpec)`, createdAt: undefined }))
  ]
  if (rowShas.length === 0) lines.push("  no releases")
  else {
    const header = ["RELEASE", "AGE", ...nodes.map((n) => (s.expectedNodes.includes(n) ? n : `${n} (gone)`))]
    const rows = rowShas.map((r) => [
      r.label,
      age(r.createdAt, now),
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
    const failures = rowShas.flatMap((r) =>
      nodes.flatMap((n) => {
        const rs = s.statuses[n]?.releases[r.sha]
        return rs?.phase === "failed"
          ? [`  ${shortSha(r.sha)} on ${n}: ${rs.message ?? "failed"}`, ...logTail(rs.log)]
          : []
      })
    )
    lines.push(...failures)
  }
  // The full sha of what is live, for the commands that take one and for `git show`.
  const liveOn = new Map<string, string[]>()
  for (const n of nodes) {
    const current = s.statuses[n]?.current
    if (current) liveOn.set(current, [...(liveOn.get(current) ?? []), n])
  }
  for (const [sha, on] of liveOn) lines.push(`  live: ${sha} on ${on.join(", ")}`)
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
    for (const n of nodes) {
      const d = s.statuses[n]?.deploy
      if (d?.phase === "failed" && d.log) lines.push(`  ${n}: bin/deploy's last lines:`, ...logTail(d.log))
    }
  }
  return lines.join("\n")
}
