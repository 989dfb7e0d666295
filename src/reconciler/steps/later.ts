/**
 * Work a release leaves for the releases after it: keeping its installed venv as a
 * template, and copying that template ahead (reuse.ts). None of it is needed for this
 * release to be ready, so on a node it runs in the reconciler's own set of fibers and
 * the release is reported ready without waiting for it; the reconciler's scope ends it
 * on shutdown (a copy cut short only leaves a staging directory, removed by the next
 * writer).
 *
 * Without a node to hand it to (a test, a one-off prepare), the pipeline runs it beside
 * bin/prepare and waits for it before the release is ready, as a caller that removes
 * the node's root afterwards must be able to.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as Scope from "effect/Scope"

export type LaterWorkSet = FiberSet.FiberSet<void, never>

export const LaterWork: Context.Reference<LaterWorkSet | undefined> = Context.Reference<LaterWorkSet | undefined>(
  "sacar/reconciler/LaterWork",
  { defaultValue: () => undefined }
)

/** The node's set, for the life of the scope (the reconciler's). */
export const makeLaterWork: Effect.Effect<LaterWorkSet, never, Scope.Scope> = FiberSet.make<void, never>()
