/**
 * Marker files in `<release>/.sacar/`, each written atomically (temp file, fsync,
 * rename) after the work it stands for has finished, so after a crash a marker is
 * either absent or whole. A step that finds its marker skips itself.
 */
import * as Effect from "effect/Effect"
import { open, readFile, rename, rm } from "node:fs/promises"
import { join } from "node:path"
import { localFailure } from "./errors.ts"
import type { LocalFailure, Step } from "./errors.ts"
import { temporaryName } from "./layout.ts"

/**
 * `source`: the artifact (url, sha256) the release was extracted from; `failed`: an
 * attempt ended in a failure a person must fix, so the next attempt starts clean.
 */
export type Marker = "source" | "venv" | "installed" | "prepared" | "ready" | "failed"

export const readMarker = (meta: string, marker: Marker): Effect.Effect<unknown> =>
  Effect.promise(() =>
    readFile(join(meta, marker), "utf8").then(
      (text) => {
        try {
          return JSON.parse(text) as unknown
        } catch {
          return undefined // a torn write cannot happen, but a hand-edited marker can
        }
      },
      () => undefined
    )
  )

export const hasMarker = (meta: string, marker: Marker): Effect.Effect<boolean> =>
  Effect.map(readMarker(meta, marker), (value) => value !== undefined)

export const writeMarker = (
  meta: string,
  marker: Marker,
  value: unknown,
  step: Step
): Effect.Effect<void, LocalFailure> =>
  Effect.tryPromise({
    try: async () => {
      const target = join(meta, marker)
      const temp = temporaryName(target, "tmp")
      const handle = await open(temp, "wx", 0o644)
      try {
        await handle.writeFile(JSON.stringify(value) + "\n")
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(temp, target)
    },
    catch: (cause) => localFailure(step, `cannot write marker ${join(meta, marker)}`, cause)
  })

export const removeMarkers = (meta: string, markers: ReadonlyArray<Marker>): Effect.Effect<void> =>
  Effect.promise(() => Promise.all(markers.map((m) => rm(join(meta, m), { force: true })))).pipe(Effect.asVoid)
