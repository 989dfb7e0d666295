/**
 * What the nodes say about one release and about the current deploy, reduced to the
 * facts every decision of the reporter needs: which nodes are expected, how many are
 * ready or live, who failed and why. Pure; render, auto-deploy and retention all read
 * these views, so they can never disagree about "ready".
 */
import type { AppConfig, DeployStatus, NodeStatus, ReleasePhase, ReleaseStatus } from "../../spec/documents.ts"
import { STEP_NAMES } from "../../spec/documents.ts"
import { matchesAny } from "../../spec/glob.ts"
import type { PredeployView } from "../../spec/tree.ts"
import type { AppSnapshot } from "./snapshot.ts"

/** The live registered nodes matching the app's `nodes` globs, sorted. */
export const expectedNodes = (config: AppConfig, liveNodes: ReadonlySet<string>): ReadonlyArray<string> =>
  [...liveNodes].filter((n) => matchesAny(n, config.nodes)).sort()

export interface NodeRelease {
  readonly node: string
  /** "unreported": the node has not written anything about this release yet. */
  readonly phase: ReleasePhase | "unreported"
  readonly status: ReleaseStatus | undefined
  /** The node's app-level problem (an AppConfig it cannot decode), if any. */
  readonly error: string | undefined
}

export interface ReleaseView {
  readonly sha: string
  readonly expected: ReadonlyArray<string>
  readonly nodes: ReadonlyArray<NodeRelease>
  readonly ready: number
  readonly failed: ReadonlyArray<NodeRelease>
  /** Ready on every expected node, and there is at least one. */
  readonly allReady: boolean
}

export const releaseView = (
  sha: string,
  expected: ReadonlyArray<string>,
  statuses: ReadonlyMap<string, NodeStatus>
): ReleaseView => {
  const nodes = expected.map((node): NodeRelease => {
    const ns = statuses.get(node)
    const status = ns?.releases[sha]
    return { node, phase: status?.phase ?? "unreported", status, error: ns?.error }
  })
  const ready = nodes.filter((n) => n.phase === "ready").length
  return {
    sha,
    expected,
    nodes,
    ready,
    failed: nodes.filter((n) => n.phase === "failed"),
    allReady: expected.length > 0 && ready === expected.length
  }
}

/**
 * The step a failed release stopped at: named by the message when it starts with a
 * step ("install: pip exited 1"), otherwise the first step with no recorded time.
 */
export const failedStep = (status: ReleaseStatus | undefined): string => {
  const message = status?.message ?? ""
  const named = STEP_NAMES.find((s) => new RegExp(`^${s}\\b`, "i").test(message))
  if (named !== undefined) return named
  const steps = status?.steps ?? {}
  return STEP_NAMES.find((s) => steps[s] === undefined) ?? "prepare"
}

export interface NodeDeploy {
  readonly node: string
  /** "not started": the node has reported nothing for this generation yet. */
  readonly phase: DeployStatus["phase"] | "not started"
  readonly status: DeployStatus | undefined
}

export type DeployState = "in_progress" | "success" | "failure"

export interface DeployView {
  readonly generation: number
  readonly sha: string
  readonly requestedBy: string | undefined
  readonly nodes: ReadonlyArray<NodeDeploy>
  readonly live: number
  readonly expected: number
  readonly failed: ReadonlyArray<NodeDeploy>
  readonly predeploy: PredeployView | undefined
  readonly state: DeployState
  /** One line for a deployment status (GitHub cuts at 140 characters). */
  readonly description: string
}

const firstLine = (s: string | undefined): string => (s ?? "").split("\n").find((l) => l.trim() !== "")?.trim() ?? ""

/** The current deploy generation as the expected nodes report it. */
export const deployView = (app: AppSnapshot, expected: ReadonlyArray<string>): DeployView | undefined => {
  const deploy = app.deploy
  if (deploy === undefined) return undefined
  const generation = deploy.generation
  const nodes = expected.map((node): NodeDeploy => {
    const d = app.statuses.get(node)?.deploy
    return d !== null && d !== undefined && d.generation === generation
      ? { node, phase: d.phase, status: d }
      : { node, phase: "not started", status: undefined }
  })
  const live = nodes.filter((n) => n.phase === "live").length
  const failed = nodes.filter((n) => n.phase === "failed")
  const predeploy = app.predeploy.get(generation)
  const state: DeployState = failed.length > 0 || predeploy?.state === "failed"
    ? "failure"
    : expected.length > 0 && live === expected.length
    ? "success"
    : "in_progress"
  const description = state === "failure"
    ? predeploy?.state === "failed"
      ? `pre-deploy failed${predeploy.node ? ` on ${predeploy.node}` : ""}: ${
        firstLine(predeploy.message) || "bin/pre-deploy did not succeed"
      }`
      : `${failed.map((f) => f.node).join(", ")} failed: ${
        firstLine(failed[0]?.status?.message) || "bin/deploy did not succeed"
      }`
    : state === "success"
    ? `live on ${live} of ${expected.length} nodes`
    : expected.length === 0
    ? "no live node matches the app's nodes"
    : `${live} of ${expected.length} nodes live`
  return {
    generation,
    sha: deploy.doc.sha,
    requestedBy: deploy.doc.requestedBy,
    nodes,
    live,
    expected: expected.length,
    failed,
    predeploy,
    state,
    description
  }
}
