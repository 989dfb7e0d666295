/**
 * Whether something is at `path` (links followed), as an Effect that cannot fail: the
 * prepare steps and the shared pip ask it of markers, templates and unpacked copies.
 */
import * as Effect from "effect/Effect"
import { access } from "node:fs/promises"

export const pathExists = (path: string): Effect.Effect<boolean> =>
  Effect.promise(() => access(path).then(() => true, () => false))
