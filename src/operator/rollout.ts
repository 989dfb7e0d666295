/**
 * Where one deploy stands, node by node, for `sacar deploy --wait`: pure over a
 * snapshot, so the follower only re-reads and redraws. A deploy is done when every
 * expected node reports the generation live, failed as soon as one node reports it
 * failed (the rollout halts there), and superseded when the DeploySpec moved on.
 */
import { HALTED_PREFIX } from "../reconciler/plan.ts"
import { shortSha } from "../spec/names.ts"
import type { AppState } from "../state/snapshot.ts"

export interface NodeProgress {
  readonly node: string
  /** A deploy phase, or "not started" before the node picked the generation up. */
  readonly phase: string
  readonly message?: string | undefined
  readonly log?: string | undefined
}

export type RolloutOutcome =
  | { readonly _tag: "Running" }
  | { readonly _tag: "Live" }
  | { readonly _tag: "Failed"; readonly failed: ReadonlyArray<NodeProgress> }
  | { readonly _tag: "Superseded"; readonly by: number }
  | { readonly _tag: "NoNodes" }

export interface Rollout {
  readonly nodes: ReadonlyArray<NodeProgress>
  readonly outcome: RolloutOutcome
}

/** The node a "rollout halted: <node> failed: ..." message names. */
const haltedBy = (n: NodeProgress): string | undefined =>
  n.message?.startsWith(HALTED_PREFIX) ? /^(\S+) failed/.exec(n.message.slice(HALTED_PREFIX.length))?.[1] : undefined

export const rolloutOf = (s: AppState, generation: number): Rollout => {
  const nodes = s.expectedNodes.map((node): NodeProgress => {
    const d = s.statuses[node]?.deploy
    if (d === undefined || d === null || d.generation < generation) return { node, phase: "not started" }
    if (d.generation > generation) return { node, phase: "superseded" }
    return { node, phase: d.phase, message: d.message, log: d.log }
  })
  const current = s.deploy?.generation
  if (current !== undefined && current > generation) return { nodes, outcome: { _tag: "Superseded", by: current } }
  // A node that halted because another failed points at that node: report the root cause first.
  const failed = nodes.filter((n) => n.phase === "failed")
    .sort((a, b) => Number(haltedBy(a) !== undefined) - Number(haltedBy(b) !== undefined))
  // Only halted nodes so far, naming a node whose own failure is not read yet: it is
  // on its way (the failing node records it before the halt), so wait for the cause.
  const causeAhead = failed.length > 0 && failed.every((n) => {
    const cause = nodes.find((other) => other.node === haltedBy(n))
    return cause !== undefined && cause.phase !== "failed"
  })
  if (failed.length > 0 && !causeAhead) return { nodes, outcome: { _tag: "Failed", failed } }
  if (nodes.length === 0) return { nodes, outcome: { _tag: "NoNodes" } }
  if (nodes.every((n) => n.phase === "live")) return { nodes, outcome: { _tag: "Live" } }
  return { nodes, outcome: { _tag: "Running" } }
}

/** One line per node whose state changed since `before` (all of them the first time). */
export const progressLines = (
  sha: string,
  before: ReadonlyArray<NodeProgress>,
  now: ReadonlyArray<NodeProgress>
): string[] =>
  now.filter((n) => {
    const was = before.find((b) => b.node === n.node)
    return was === undefined || was.phase !== n.phase || was.message !== n.message
  }).map((n) => `${n.node}: ${n.phase} ${shortSha(sha)}${n.message ? ` (${n.message})` : ""}`)

/** What `--wait` prints when the deploy failed: each failing node, its message and its output's end. */
export const failureReport = (failed: ReadonlyArray<NodeProgress>, tailLines = 15): string =>
  failed.map((n) => {
    const tail = (n.log ?? "").trimEnd().split("\n").filter((l) => l.trim() !== "").slice(-tailLines)
    return [`${n.node} failed: ${n.message ?? "no message"}`, ...tail.map((l) => `  | ${l}`)].join("\n")
  }).join("\n")
