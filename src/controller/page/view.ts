/**
 * What the status page shows, derived from the status report (the same
 * `AppStatusReport` as `sacar status --json` and `GET /v1/apps/<app>`). Pure: a
 * function of the reports and the time, so it is tested without a server and
 * recomputed whenever the controller's watch moves.
 */
import { DEPLOY_PHASES, type DeployPhase, lockInForce, STEP_NAMES } from "../../spec/documents.ts"

import type { AppStatusReport } from "../../spec/status-report.ts"

/** Lines of a failing script's output the page shows; the node keeps up to 64 KiB. */
export const LOG_TAIL_LINES = 20
/** Failures listed per app, newest first. */
export const RECENT_FAILURES = 10
/**
 * Up to this many nodes an app's releases are a grid, a cell per node; above it each
 * release is one line: nodes by phase (those not ready named) and step timings as
 * median and slowest. A hundred columns are unreadable, and the page stays small.
 */
export const GRID_MAX_NODES = 20

export interface StepView {
  readonly step: string
  readonly ms: number
}

export interface CellView {
  readonly phase: string
  readonly steps: ReadonlyArray<StepView>
  /** Sum of the steps' times: what the release took on this node so far. */
  readonly totalMs: number
  readonly startedAt: string | undefined
  readonly message: string | undefined
}

export interface StepSpread {
  readonly step: string
  readonly medianMs: number
  readonly maxMs: number
  readonly slowest: string
}

export interface ReleaseSummary {
  /** Phases by how many nodes are in them; `nodes` is empty for "ready" (the many). */
  readonly phases: ReadonlyArray<
    { readonly phase: string; readonly count: number; readonly nodes: ReadonlyArray<string> }
  >
  readonly steps: ReadonlyArray<StepSpread>
}

export interface ReleaseRow {
  readonly sha: string
  readonly createdAt: string | undefined
  readonly live: boolean
  /** One per node when the app has at most GRID_MAX_NODES nodes; empty otherwise. */
  readonly cells: ReadonlyArray<CellView | undefined>
  /** Set instead of `cells` above GRID_MAX_NODES nodes. */
  readonly summary: ReleaseSummary | undefined
}

export interface DeployNode {
  readonly node: string
  /** "waiting" too when the node has not reported this generation yet. */
  readonly phase: DeployPhase
  readonly message: string | undefined
  readonly finishedAt: string | undefined
}

export interface PageDeployView {
  readonly sha: string
  readonly generation: number
  readonly requestedBy: string | undefined
  readonly requestedAt: string | undefined
  readonly force: boolean
  readonly nodes: ReadonlyArray<DeployNode>
  readonly counts: Readonly<Record<DeployPhase, number>>
  /** Some expected node is not live (or failed) on this generation yet. */
  readonly inProgress: boolean
}

export interface FailureView {
  readonly kind: "prepare" | "deploy"
  readonly sha: string
  readonly node: string
  readonly message: string
  readonly at: string | undefined
  readonly logTail: string
}

export interface AppView {
  readonly app: string
  readonly about: ReadonlyArray<string>
  readonly lock: { readonly by: string; readonly reason: string; readonly until: string | undefined } | undefined
  readonly pin: { readonly sha: string; readonly by: string; readonly reason: string } | undefined
  readonly deploy: PageDeployView | undefined
  /** Expected nodes first, then nodes that report but no longer match (marked gone). */
  readonly nodes: ReadonlyArray<{ readonly node: string; readonly gone: boolean; readonly current: string | null }>
  readonly releases: ReadonlyArray<ReleaseRow>
  readonly failures: ReadonlyArray<FailureView>
  readonly problems: ReadonlyArray<string>
}

export const tailLines = (log: string | undefined, lines = LOG_TAIL_LINES): string =>
  log === undefined ? "" : log.replace(/\s+$/, "").split("\n").slice(-lines).join("\n")

const stepOrder = (name: string): number => {
  const i = (STEP_NAMES as ReadonlyArray<string>).indexOf(name)
  return i === -1 ? STEP_NAMES.length : i
}

const deployView = (report: AppStatusReport, nodes: ReadonlyArray<string>): PageDeployView | undefined => {
  if (report.deploy === null) return undefined
  const { spec, generation } = report.deploy
  const rows: DeployNode[] = nodes.map((node) => {
    const d = report.nodes[node]?.deploy
    return d !== null && d !== undefined && d.generation === generation
      ? { node, phase: d.phase, message: d.message, finishedAt: d.finishedAt }
      : { node, phase: "waiting", message: undefined, finishedAt: undefined }
  })
  const counts = Object.fromEntries(DEPLOY_PHASES.map((p) => [p, 0])) as Record<DeployPhase, number>
  for (const row of rows) counts[row.phase]++
  return {
    sha: spec.sha,
    generation,
    requestedBy: spec.requestedBy,
    requestedAt: spec.requestedAt,
    force: spec.force === true,
    nodes: rows,
    counts,
    inProgress: rows.some((r) => r.phase !== "live" && r.phase !== "failed")
  }
}

const failuresOf = (report: AppStatusReport): FailureView[] => {
  const out: FailureView[] = []
  for (const [node, status] of Object.entries(report.nodes)) {
    for (const [sha, release] of Object.entries(status.releases)) {
      if (release.phase !== "failed") continue
      out.push({
        kind: "prepare",
        sha,
        node,
        message: release.message ?? "failed",
        at: release.finishedAt ?? status.updatedAt,
        logTail: tailLines(release.log)
      })
    }
    const d = status.deploy
    if (d !== null && d.phase === "failed") {
      out.push({
        kind: "deploy",
        sha: d.sha,
        node,
        message: d.message ?? "failed",
        at: d.finishedAt ?? status.updatedAt,
        logTail: tailLines(d.log)
      })
    }
  }
  const time = (f: FailureView) => Date.parse(f.at ?? "") || 0
  return out.sort((a, b) => time(b) - time(a) || a.node.localeCompare(b.node)).slice(0, RECENT_FAILURES)
}

/** Names shown per phase in a summary line before "and N more". */
const NAMED = 8

const summarize = (cells: ReadonlyArray<readonly [string, CellView | undefined]>): ReleaseSummary => {
  const byPhase = new Map<string, string[]>()
  const steps = new Map<string, Array<{ node: string; ms: number }>>()
  for (const [node, cell] of cells) {
    const phase = cell?.phase ?? "not started"
    const inPhase = byPhase.get(phase)
    if (inPhase === undefined) byPhase.set(phase, [node])
    else inPhase.push(node)
    for (const s of cell?.steps ?? []) {
      const times = steps.get(s.step)
      if (times === undefined) steps.set(s.step, [{ node, ms: s.ms }])
      else times.push({ node, ms: s.ms })
    }
  }
  const phases = [...byPhase.entries()]
    .map(([phase, nodes]) => ({ phase, count: nodes.length, nodes: phase === "ready" ? [] : nodes.slice(0, NAMED) }))
    .sort((a, b) => b.count - a.count || a.phase.localeCompare(b.phase))
  const spreads = [...steps.entries()]
    .sort(([a], [b]) => stepOrder(a) - stepOrder(b))
    .map(([step, times]) => {
      const sorted = times.toSorted((a, b) => a.ms - b.ms)
      const slowest = sorted[sorted.length - 1]!
      return { step, medianMs: sorted[Math.floor(sorted.length / 2)]!.ms, maxMs: slowest.ms, slowest: slowest.node }
    })
  return { phases, steps: spreads }
}

export const appView = (report: AppStatusReport, now: Date): AppView => {
  const expected = new Set(report.expectedNodes)
  const gone = Object.keys(report.nodes).filter((n) => !expected.has(n)).sort()
  const nodeNames = [...report.expectedNodes, ...gone]
  const c = report.config
  const about = c === null
    ? ["no valid config"]
    : [
      c.repo !== undefined ? `${c.repo}@${c.branch}` : "KV only",
      `nodes ${c.nodes.join(",")}`,
      c.autoDeploy ? "auto-deploy" : "manual deploy",
      `maxParallel ${c.maxParallel}`
    ]
  const lock = report.lock !== null && lockInForce(report.lock, now)
    ? { by: report.lock.by, reason: report.lock.reason, until: report.lock.until }
    : undefined
  const pin = report.pin === null ? undefined : { sha: report.pin.sha, by: report.pin.by, reason: report.pin.reason }
  const liveShas = new Set(Object.values(report.nodes).flatMap((s) => (s.current === null ? [] : [s.current])))
  const releases = report.releases.map((r): ReleaseRow => {
    const cells = nodeNames.map((node): CellView | undefined => {
      const rs = report.nodes[node]?.releases[r.sha]
      if (rs === undefined) return undefined
      const steps = Object.entries(rs.steps)
        .map(([step, t]) => ({ step, ms: t.ms }))
        .sort((a, b) => stepOrder(a.step) - stepOrder(b.step))
      return {
        phase: rs.phase,
        steps,
        totalMs: steps.reduce((sum, s) => sum + s.ms, 0),
        startedAt: rs.startedAt,
        message: rs.message
      }
    })
    const grid = nodeNames.length <= GRID_MAX_NODES
    return {
      sha: r.sha,
      createdAt: r.spec.createdAt,
      live: liveShas.has(r.sha),
      cells: grid ? cells : [],
      summary: grid ? undefined : summarize(nodeNames.map((n, i) => [n, cells[i]] as const))
    }
  })
  const nodeErrors = Object.entries(report.nodes).flatMap(([node, s]) =>
    s.error === undefined ? [] : [`${node}: ${s.error}`]
  )
  return {
    app: report.app,
    about,
    lock,
    pin,
    deploy: deployView(report, nodeNames),
    nodes: nodeNames.map((node) => ({ node, gone: !expected.has(node), current: report.nodes[node]?.current ?? null })),
    releases,
    failures: failuresOf(report),
    problems: [...report.problems, ...nodeErrors]
  }
}

/** One line for the top of the page and the tab title. */
export const summaryOf = (apps: ReadonlyArray<AppView>): string => {
  const deploying = apps.filter((a) => a.deploy?.inProgress === true).length
  const failing = apps.filter((a) => a.failures.length > 0).length
  const locked = apps.filter((a) => a.lock !== undefined).length
  return [
    `${apps.length} app${apps.length === 1 ? "" : "s"}`,
    `${deploying} deploying`,
    `${failing} with failures`,
    `${locked} locked`
  ].join(" · ")
}
