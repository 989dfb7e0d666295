/**
 * Step 1: the tarball, downloaded next to the releases. Skipped when the tarball is
 * already there (and still matches the checksum, when one is given). Leftover partial
 * files of dead writers are removed first.
 *
 * An artifact with a sha256 is kept in a per-node cache (`$SACAR_ROOT/.sacar/artifacts/
 * <sha256>.tgz`, the newest few), so the same bytes are not fetched twice: a retry, or
 * another sha built from the same artifact. Cached files are hard links (a tarball is
 * only ever read, and removed by unlinking) and are checked against the sha256 again
 * before use.
 */
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { link, mkdir, readdir, rename, rm, stat } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { pipeline } from "node:stream/promises"
import { ArtifactStore } from "../../artifacts/store.ts"
import { isAlive } from "../../process/alive.ts"
import { ArtifactUnavailable, localFailure } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { temporaryName, temporaryOwner } from "./layout.ts"

export interface DownloadInput {
  readonly url: string
  readonly sha256?: string | undefined
  /** Where the tarball goes (`releasePaths(...).tarball`). */
  readonly dest: string
  /** The node's artifact cache (`releasePaths(...).artifactCache`); none when omitted. */
  readonly cache?: string
}

/** How many artifacts the cache keeps, newest first. */
const CACHED_ARTIFACTS = 8

export interface DownloadResult {
  readonly skipped: boolean
  readonly bytes: number
  /** Taken from the node's cache instead of fetched. */
  readonly cached?: boolean
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
    const expected = input.sha256?.toLowerCase()
    const cached = input.cache === undefined || expected === undefined
      ? undefined
      : join(input.cache, `${expected}.tgz`)
    if (cached !== undefined && (yield* fromCache(cached, input.dest, expected!))) {
      const size = yield* Effect.promise(() => stat(input.dest).then((s) => s.size))
      return { skipped: false, bytes: size, cached: true }
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
    if (cached !== undefined) yield* intoCache(input.dest, cached)
    return { skipped: false, bytes: got.bytes }
  })

/** Link the cached artifact to `dest` if it is there and still has its sha256. */
const fromCache = (cached: string, dest: string, sha256: string): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    if (!(yield* Effect.promise(() => stat(cached).then((s) => s.isFile(), () => false)))) return false
    if ((yield* fileSha256(cached)) !== sha256) {
      yield* Effect.promise(() => rm(cached, { force: true }))
      return false
    }
    return yield* Effect.promise(() => link(cached, dest).then(() => true, () => false))
  })

/** Keep `file` in the cache as `cached` (one rename, so never half there), and only the newest few. */
const intoCache = (file: string, cached: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const dir = dirname(cached)
    await mkdir(dir, { recursive: true })
    const temp = temporaryName(cached, "tmp")
    await link(file, temp)
    await rename(temp, cached)
    const entries = await Promise.all(
      (await readdir(dir)).filter((n) => /^[0-9a-f]{64}\.tgz$/.test(n)).map(async (name) => ({
        name,
        at: await stat(join(dir, name)).then((s) => s.mtimeMs, () => 0)
      }))
    )
    entries.sort((a, b) => b.at - a.at)
    await Promise.all(entries.slice(CACHED_ARTIFACTS).map((e) => rm(join(dir, e.name), { force: true })))
  }).pipe(Effect.catchCause(() => Effect.void))
