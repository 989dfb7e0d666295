/**
 * Where a release's artifact goes as it is downloaded: in one pass, the bytes are
 * unpacked into a staging directory beside the release (`releases/<sha>.<pid>-<rand>.
 * extract`) and, when the artifact has a sha256, written to the node's cache as a
 * partial file. Committing (the bytes matched) moves only the cache file into place;
 * the extract step moves the staging directory. Discarding (a failed attempt, a
 * mismatch) stops the unpacking and removes both.
 */
import { once } from "node:events"
import { mkdir, rm } from "node:fs/promises"
import { dirname } from "node:path"
import { Writable } from "node:stream"
import { finished } from "node:stream/promises"
import { fileSink } from "../../artifacts/sink.ts"
import type { Sink } from "../../artifacts/sink.ts"
import type { ExtractLimits } from "./extract.ts"
import { temporaryName } from "./layout.ts"
import { startUnpack } from "./unpack.ts"
import type { Unpacking } from "./unpack.ts"

export interface ReleaseSink extends Sink {
  /** The directory the artifact is unpacked into, renamed to the release by the extract step. */
  readonly staging: string
  readonly unpacking: Unpacking
}

export const removeStaging = (staging: string): Promise<void> =>
  rm(staging, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })

export const releaseSink = async (options: {
  /** `releases/<sha>` */
  readonly dest: string
  /** `<cache>/<sha256>.tgz`, when the artifact is to be cached. */
  readonly cacheFile?: string | undefined
  readonly limits: ExtractLimits
}): Promise<ReleaseSink> => {
  const staging = temporaryName(options.dest, "extract")
  await mkdir(staging, { mode: 0o755 })
  if (options.cacheFile !== undefined) await mkdir(dirname(options.cacheFile), { recursive: true })
  const unpacking = startUnpack(staging, options.limits)
  const cache = options.cacheFile === undefined ? undefined : fileSink(options.cacheFile)
  const writable = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      // Both at once: the slower of the disk write and the unpacking paces the download.
      Promise.all([
        cache === undefined || cache.writable.write(chunk) ? undefined : once(cache.writable, "drain"),
        unpacking.write(chunk)
      ]).then(() => callback(), callback)
    },
    final(callback) {
      unpacking.end()
      if (cache === undefined) return callback()
      cache.writable.end()
      finished(cache.writable).then(() => callback(), callback)
    },
    destroy(error, callback) {
      cache?.writable.destroy()
      callback(error)
    }
  })
  cache?.writable.on("error", (error) => writable.destroy(error))
  return {
    staging,
    unpacking,
    writable,
    commit: () => cache?.commit() ?? Promise.resolve(),
    discard: async () => {
      unpacking.stop()
      await Promise.all([
        unpacking.outcome.then(() => removeStaging(staging)),
        cache?.discard()
      ])
    }
  }
}
