/**
 * Step 1: the tarball, downloaded next to the releases. Skipped when the tarball is
 * already there (and still matches the checksum, when one is given). Leftover partial
 * files of dead writers are removed first.
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { mkdir, readdir, rm, stat } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { pipeline } from "node:stream/promises"
import { ArtifactStore } from "../../artifacts/store.ts"
import { isAlive } from "../../process/alive.ts"
import { ArtifactUnavailable, localFailure } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { temporaryOwner } from "./layout.ts"

export interface DownloadInput {
  readonly url: string
  readonly sha256?: string | undefined
  /** Where the tarball goes (`releasePaths(...).tarball`). */
  readonly dest: string
}

export interface DownloadResult {
  readonly skipped: boolean
  readonly bytes: number
}

const fileSha256 = (path: string) =>
  Effect.promise(async () => {
    const hash = createHash("sha256")
    await pipeline(createReadStream(path), hash)
    return hash.digest("hex")
  })

/** Temporary files beside `target` whose writer is dead. */
export const removeLeftovers = (target: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const dir = dirname(target)
    const prefix = `${basename(target)}.`
    const names = await readdir(dir).catch(() => [] as Array<string>)
    await Promise.all(names.map(async (name) => {
      const owner = name.startsWith(prefix) ? temporaryOwner(name) : undefined
      if (owner !== undefined && owner !== process.pid && !isAlive(owner)) {
        await rm(join(dir, name), { recursive: true, force: true })
      }
    }))
  })

export const download = (
  input: DownloadInput
): Effect.Effect<DownloadResult, ArtifactUnavailable | LocalFailure, ArtifactStore> =>
  Effect.gen(function*() {
    yield* Effect.tryPromise({
      try: () => mkdir(dirname(input.dest), { recursive: true }),
      catch: (cause) => localFailure("download", `cannot create ${dirname(input.dest)}`, cause)
    })
    yield* removeLeftovers(input.dest)
    const existing = yield* Effect.promise(() => stat(input.dest).catch(() => undefined))
    if (existing?.isFile()) {
      const expected = input.sha256?.toLowerCase()
      if (expected === undefined || (yield* fileSha256(input.dest)) === expected) {
        return { skipped: true, bytes: existing.size }
      }
      yield* Effect.promise(() => rm(input.dest, { force: true }))
    }
    const store = yield* ArtifactStore
    const got = yield* store.download(input.url, input.dest, { sha256: input.sha256 }).pipe(
      Effect.mapError((error) =>
        new ArtifactUnavailable({
          step: "download",
          url: input.url,
          ...(error.status === undefined ? {} : { status: error.status }),
          retryable: error.retryable,
          log: "",
          message: error.message
        })
      )
    )
    return { skipped: false, bytes: got.bytes }
  })
