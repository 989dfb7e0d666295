/**
 * Step 1: the artifact, streamed straight into extraction. In one pass the bytes are
 * hashed, unpacked into a staging directory beside the release and, when the spec
 * gives a sha256, written to the node's artifact cache (`$SACAR_ROOT/.sacar/artifacts/
 * <sha256>.tgz`, the newest few). The step ends when the bytes end and their digest
 * matched; the extract step then moves the staging directory into place. A mismatch
 * leaves neither a staging directory nor a cache entry.
 *
 * An artifact already in the cache is unpacked from there instead of fetched: a retry,
 * or another sha built from the same artifact. Its digest is checked again as it is
 * read; a cached file whose bytes changed is removed and the artifact fetched.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { mkdir, readdir, rm, stat } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import type { DownloadError } from "../../artifacts/errors.ts"
import { openFile } from "../../artifacts/file.ts"
import { ArtifactStore } from "../../artifacts/store.ts"
import { transferVerified } from "../../artifacts/transfer.ts"
import { isAlive } from "../../process/alive.ts"
import { ArtifactUnavailable, localFailure } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { defaultExtractLimits } from "./extract.ts"
import type { ExtractLimits } from "./extract.ts"
import { temporaryOwner } from "./layout.ts"
import { releaseSink, removeStaging } from "./release-sink.ts"
import type { ReleaseSink } from "./release-sink.ts"

export interface DownloadInput {
  readonly url: string
  readonly sha256?: string | undefined
  /** The release directory (`releasePaths(...).dir`); the staging directory goes beside it. */
  readonly dest: string
  /** The node's artifact cache (`releasePaths(...).artifactCache`); none when omitted. */
  readonly cache?: string
  readonly limits?: ExtractLimits | undefined
}

/** How many artifacts the cache keeps, newest first. */
const CACHED_ARTIFACTS = 8

// A cached file is local: a read that stalls this long is a broken disk, not a slow network.
const CACHE_STALL_MS = 60_000

export interface DownloadResult {
  readonly skipped: boolean
  readonly bytes: number
  /** Unpacked from the node's cache instead of fetched. */
  readonly cached: boolean
  /** The unpacked, not yet renamed, release; removed when the scope closes unless moved into place. */
  readonly unpacked: ReleaseSink
}

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

const unavailable = (url: string, error: DownloadError) =>
  new ArtifactUnavailable({
    step: "download",
    url,
    ...(error.status === undefined ? {} : { status: error.status }),
    retryable: error.retryable,
    log: "",
    message: error.message
  })

export const download = (
  input: DownloadInput
): Effect.Effect<DownloadResult, ArtifactUnavailable | LocalFailure, ArtifactStore | Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.tryPromise({
      try: () => mkdir(dirname(input.dest), { recursive: true }),
      catch: (cause) => localFailure("download", `cannot create ${dirname(input.dest)}`, cause)
    })
    yield* removeLeftovers(input.dest)
    const limits = input.limits ?? defaultExtractLimits
    const expected = input.sha256?.toLowerCase()
    const cached = input.cache === undefined || expected === undefined
      ? undefined
      : join(input.cache, `${expected}.tgz`)
    if (cached !== undefined) yield* removeLeftovers(cached)

    // Held until the scope closes: the extract step renames it away when all went well.
    const keep = <E, R>(transfer: Effect.Effect<{ readonly bytes: number; readonly sink: ReleaseSink }, E, R>) =>
      Effect.acquireRelease(transfer, (got) => Effect.promise(() => removeStaging(got.sink.staging)), {
        interruptible: true
      })

    if (cached !== undefined && (yield* Effect.promise(() => stat(cached).then((s) => s.isFile(), () => false)))) {
      const hit = yield* keep(transferVerified({
        url: pathToFileURL(cached).href,
        sha256: expected,
        stallMs: CACHE_STALL_MS,
        open: (signal) => openFile(cached, signal),
        sink: () => releaseSink({ dest: input.dest, limits })
      })).pipe(
        Effect.catch((error) =>
          Effect.logWarning("a cached artifact could not be used; fetching it again", { error: error.message }).pipe(
            Effect.andThen(Effect.promise(() => rm(cached, { force: true }))),
            Effect.as(undefined)
          )
        )
      )
      if (hit !== undefined) return { skipped: false, bytes: hit.bytes, cached: true, unpacked: hit.sink }
    }

    const store = yield* ArtifactStore
    const got = yield* keep(
      store.fetch(input.url, () => releaseSink({ dest: input.dest, cacheFile: cached, limits }), {
        sha256: input.sha256
      })
    ).pipe(Effect.mapError((error) => unavailable(input.url, error)))
    if (cached !== undefined) yield* pruneCache(dirname(cached))
    return { skipped: false, bytes: got.bytes, cached: false, unpacked: got.sink }
  })

/** Only the newest few artifacts stay in the cache. */
const pruneCache = (dir: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const entries = await Promise.all(
      (await readdir(dir)).filter((n) => /^[0-9a-f]{64}\.tgz$/.test(n)).map(async (name) => ({
        name,
        at: await stat(join(dir, name)).then((s) => s.mtimeMs, () => 0)
      }))
    )
    entries.sort((a, b) => b.at - a.at)
    await Promise.all(entries.slice(CACHED_ARTIFACTS).map((e) => rm(join(dir, e.name), { force: true })))
  }).pipe(Effect.catchCause(() => Effect.void))
