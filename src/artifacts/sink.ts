/**
 * Where the bytes of one download attempt go. The store makes a fresh sink for every
 * attempt, so a retry starts clean: a failed, interrupted or mismatched attempt is
 * discarded whole, and only an attempt whose bytes were complete and matched the
 * sha256 is committed.
 */
import { randomBytes } from "node:crypto"
import { createWriteStream } from "node:fs"
import { rename, rm } from "node:fs/promises"
import type { Writable } from "node:stream"

export interface Sink {
  /** Receives the body, in order; ended when the body ended. */
  readonly writable: Writable
  /** The bytes were complete and matched: make the result visible. */
  readonly commit: () => Promise<void>
  /** The attempt failed or did not match: leave nothing behind. */
  readonly discard: () => Promise<void>
}

/** The name carries the writer's pid so a later run can recognise a dead writer's leftovers. */
export const partialPath = (dest: string): string => `${dest}.${process.pid}-${randomBytes(4).toString("hex")}.partial`

/** The bytes as a file: written to `<dest>.<pid>-<rand>.partial`, renamed to `dest` on commit. */
export const fileSink = (dest: string): Sink => {
  const partial = partialPath(dest)
  return {
    writable: createWriteStream(partial, { flags: "wx", mode: 0o644 }),
    commit: () => rename(partial, dest),
    discard: () => rm(partial, { force: true })
  }
}
