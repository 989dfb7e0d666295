/**
 * What the demo shows about each node, computed from an app snapshot and the
 * `current` links on disk. Pure: the same views give the same lines and the same
 * table, so the walk-through's output is tested without processes.
 */
import { STEP_NAMES } from "../spec/documents.ts"
import type { DeployStatus, ReleaseStatus } from "../spec/documents.ts"
import { formatDuration } from "../spec/duration.ts"
import { shortSha } from "../spec/names.ts"
import type { AppState } from "../state/snapshot.ts"

export interface NodeView {
  readonly node: string
  /** The node's reconciler holds its registration (sacar/_nodes/<node>). */
  readonly registered: boolean
  /** The node's status for the demo's release. */
  readonly release: ReleaseStatus | undefined
  /** The node's deploy status, only when it is about the deploy the demo asked for. */
  readonly deploy: DeployStatus | undefined
  /** The node's own report of its live release. */
  readonly reportedCurrent: string | null
  /** What `<root>/<app>/current` points at on disk (e.g. "releases/<sha>"), undefined without the link. */
  readonly currentLink: string | undefined
}

export interface Watched {
  readonly sha: string
  /** The deploy's generation, once the demo has asked for it. */
  readonly generation: number | undefined
}

export const nodeViews = (
  snapshot: AppState,
  watched: Watched,
  nodes: ReadonlyArray<string>,
  currentLinks: Readonly<Record<string, string | undefined>>
): NodeView[] =>
  nodes.map((node) => {
    const status = snapshot.statuses[node]
    const deploy = status?.deploy ?? null
    return {
      node,
      registered: snapshot.expectedNodes.includes(node),
      release: status?.releases[watched.sha],
      deploy: deploy !== null && watched.generation !== undefined && deploy.generation === watched.generation
        ? deploy
        : undefined,
      reportedCurrent: status?.current ?? null,
      currentLink: currentLinks[node]
    }
  })

/** The sha a `current` link names, if it names a release. */
export const linkedSha = (link: string | undefined): string | undefined =>
  /(?:^|\/)releases\/([0-9a-f]{40})\/?$/.exec(link ?? "")?.[1]

const ms = (steps: ReleaseStatus["steps"], name: string) => steps[name]?.ms

/** "download 12ms, extract 30ms" for the steps in `names` that have a time. */
export const stepTimes = (steps: ReleaseStatus["steps"], names: ReadonlyArray<string> = STEP_NAMES): string =>
  names.flatMap((n) => (ms(steps, n) === undefined ? [] : [`${n} ${formatDuration(ms(steps, n)!)}`])).join(", ")

const totalMs = (steps: ReleaseStatus["steps"]) => Object.values(steps).reduce((sum, s) => sum + s.ms, 0)

const line = (node: string, what: string, detail = "") => `${node.padEnd(8)}${what.padEnd(10)}${detail}`.trimEnd()

/**
 * The lines one change of a node is worth. `every` gives one line per phase change
 * (plain output); `milestones` only ready, failed, live and the `current` switch
 * (above the live table on a terminal).
 */
export const changeLines = (
  before: NodeView | undefined,
  after: NodeView,
  detail: "every" | "milestones"
): string[] => {
  const out: string[] = []
  const n = after.node
  if (detail === "every" && after.registered && !before?.registered) out.push(line(n, "up", "reconciler registered"))
  const r0 = before?.release
  const r1 = after.release
  if (r1 !== undefined && (r0?.phase !== r1.phase || r0.attempt !== r1.attempt)) {
    const done = STEP_NAMES.filter((s) =>
      ms(r1.steps, s) !== undefined && (r0 === undefined || r0.attempt !== r1.attempt || ms(r0.steps, s) === undefined)
    )
    const times = stepTimes(r1.steps, done)
    if (r1.phase === "ready")
      out.push(line(n, "ready", `prepared in ${formatDuration(totalMs(r1.steps))} (${stepTimes(r1.steps)})`))
    else if (r1.phase === "failed") out.push(line(n, "failed", `${times ? `(${times}) ` : ""}${r1.message ?? ""}`))
    else if (detail === "every") out.push(line(n, r1.phase, times ? `(${times})` : ""))
  }
  const d0 = before?.deploy
  const d1 = after.deploy
  if (d1 !== undefined && d0?.phase !== d1.phase) {
    if (d1.phase === "failed") out.push(line(n, "deploy", `failed: ${d1.message ?? ""}`))
    else if (detail === "every" || d1.phase === "live")
      out.push(line(n, "deploy", d1.phase === "waiting" ? "waiting for its turn (maxParallel)" : d1.phase))
  }
  if (after.currentLink !== undefined && after.currentLink !== before?.currentLink) {
    const sha = linkedSha(after.currentLink)
    out.push(line(n, "current", `-> ${sha === undefined ? after.currentLink : `releases/${shortSha(sha)}`}`))
  }
  return out
}

export type Outcome =
  | { readonly kind: "waiting" }
  | { readonly kind: "done" }
  | { readonly kind: "failed"; readonly node: string; readonly message: string; readonly log: string | undefined }

/** Every node has the release ready, or the first failure. */
export const prepareOutcome = (views: ReadonlyArray<NodeView>): Outcome => {
  for (const v of views) {
    if (v.release?.phase === "failed")
      return {
        kind: "failed",
        node: v.node,
        message: `preparing failed: ${v.release.message ?? "no message"}`,
        log: v.release.log
      }
  }
  return views.every((v) => v.release?.phase === "ready") ? { kind: "done" } : { kind: "waiting" }
}

/** Every node reports the deploy live, and its `current` link on disk names the release. */
export const deployOutcome = (views: ReadonlyArray<NodeView>, sha: string): Outcome => {
  for (const v of views) {
    if (v.deploy?.phase === "failed")
      return {
        kind: "failed",
        node: v.node,
        message: `deploy failed: ${v.deploy.message ?? "no message"}`,
        log: v.deploy.log
      }
  }
  const live = (v: NodeView) =>
    v.deploy?.phase === "live" && v.reportedCurrent === sha && linkedSha(v.currentLink) === sha
  return views.every(live) ? { kind: "done" } : { kind: "waiting" }
}

const BAR_FULL = "█"
const BAR_EMPTY = "░"

const age = (iso: string | undefined, now: Date) => {
  const at = iso === undefined ? NaN : Date.parse(iso)
  return Number.isNaN(at) ? "" : formatDuration(Math.max(0, now.getTime() - at))
}

const prepareCell = (v: NodeView, now: Date): string => {
  if (!v.registered && v.release === undefined) return "starting"
  const r = v.release
  if (r === undefined) return "waiting for the release"
  const done = STEP_NAMES.filter((s) => ms(r.steps, s) !== undefined).length
  const bar = BAR_FULL.repeat(done) + BAR_EMPTY.repeat(STEP_NAMES.length - done)
  if (r.phase === "ready") return `${bar} ready in ${formatDuration(totalMs(r.steps))}`
  if (r.phase === "failed") return `${bar} FAILED`
  return `${bar} ${r.phase} ${age(r.startedAt, now)}`.trimEnd()
}

const deployCell = (v: NodeView, deployAsked: boolean, now: Date): string => {
  if (!deployAsked) return "-"
  const d = v.deploy
  if (d === undefined) return "-"
  if (d.phase === "live" || d.phase === "failed") return d.phase === "live" ? "live" : "FAILED"
  return `${d.phase} ${age(d.startedAt, now)}`.trimEnd()
}

/** The table redrawn on a terminal: one row per node. */
export const renderTable = (views: ReadonlyArray<NodeView>, watched: Watched, now: Date): string[] => {
  const rows = [
    ["NODE", `PREPARE ${shortSha(watched.sha)}`, "DEPLOY", "CURRENT"],
    ...views.map((v) => {
      const sha = linkedSha(v.currentLink)
      return [
        v.node,
        prepareCell(v, now),
        deployCell(v, watched.generation !== undefined, now),
        sha === undefined ? "-" : shortSha(sha)
      ]
    })
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("   ")}`.trimEnd())
}
