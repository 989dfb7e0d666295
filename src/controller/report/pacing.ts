/**
 * How often one check run is updated. A release that prepares for minutes on 100
 * nodes changes its rendered text with every node's step; sent every 2 s that is
 * about 150 updates for a 5-minute prepare. The gap between two updates widens with
 * the release's age (half of it, never less than the coalescing window), so the
 * updates of a release grow with the logarithm of its duration and stay within the
 * budget of 20 GitHub requests per release. What a person waits for is never held
 * back: a change of phase (status, conclusion, buttons) or a new failed node is sent
 * at once.
 */
import type { CheckView } from "./render.ts"

/** What must reach GitHub at once when it changes. */
export const phaseOf = (view: CheckView, failedNodes: number): string =>
  [view.status, view.conclusion ?? "", view.actions.map((a) => a.identifier).join(","), String(failedNodes)].join("|")

/** Milliseconds to wait between two updates of a run whose release started at `startedAt`. */
export const updateGap = (coalesceMs: number, startedAt: number | undefined, now: number): number =>
  startedAt === undefined ? coalesceMs : Math.max(coalesceMs, (now - startedAt) / 2)
