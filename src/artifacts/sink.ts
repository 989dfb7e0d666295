/**
 * Streams a body into `<dest>.<owner>.partial`, hashing as it goes, and renames it to
 * `dest` only when it is complete and matches the expected sha256. The partial name
 * carries the writer's pid so concurrent writers never share a file and a later run
 * can recognise leftovers of a dead one.
 */
import * as Effect from "effect/Effect"
import { createHash, randomBytes } from "node:crypto"
import { createWriteStream } from "node:fs"
import { rename, rm } from "node:fs/promises"
import { Transform } from "node:stream"
import type { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { DownloadError, transportError } from "./errors.ts"

export interface Downloaded {
  readonly bytes: number
  readonly sha256: string
}

/** Opens the body; the signal aborts the request (interruption, or a stall). */
export type OpenBody = (signal: AbortSignal) => Promise<Readable>

export const partialPath = (dest: string): string => `${dest}.${process.pid}-${randomBytes(4).toString("hex")}.partial`

class Stalled extends Error {}

export const writeVerified = (options: {
  readonly url: string
  readonly dest: string
  readonly sha256?: string | undefined
  readonly stallMs: number
  readonly open: OpenBody
}): Effect.Effect<Downloaded, DownloadError> => {
  const { url, dest } = options
  const partial = partialPath(dest)
  const transfer = Effect.tryPromise({
    try: async (interrupt) => {
      const stall = new AbortController()
      let timer = setTimeout(() => stall.abort(new Stalled()), options.stallMs)
      const poke = () => {
        clearTimeout(timer)
        timer = setTimeout(() => stall.abort(new Stalled()), options.stallMs)
      }
      const signal = AbortSignal.any([interrupt, stall.signal])
      const hash = createHash("sha256")
      let bytes = 0
      try {
        const body = await options.open(signal)
        const meter = new Transform({
          transform(chunk: Buffer, _enc, callback) {
            poke()
            hash.update(chunk)
            bytes += chunk.length
            callback(null, chunk)
          }
        })
        await pipeline(body, meter, createWriteStream(partial, { flags: "wx", mode: 0o644 }), { signal })
      } catch (error) {
        if (stall.signal.aborted && !interrupt.aborted) {
          throw new DownloadError({ url, retryable: true, message: `${url}: no data for ${options.stallMs} ms` })
        }
        throw error
      } finally {
        clearTimeout(timer)
      }
      return { bytes, sha256: hash.digest("hex") }
    },
    catch: (error) => {
      if (!(error instanceof DownloadError)) return transportError(url, error)
      // A gs:// download fails at its media URL: name both.
      return error.url === url ? error : new DownloadError({
        url,
        retryable: error.retryable,
        ...(error.status === undefined ? {} : { status: error.status }),
        message: `${url}: ${error.message}`
      })
    }
  })

  return Effect.gen(function*() {
    const got = yield* transfer
    const expected = options.sha256?.toLowerCase()
    if (expected !== undefined && got.sha256 !== expected) {
      return yield* new DownloadError({
        url,
        retryable: false,
        message: `${url}: checksum mismatch: expected sha256 ${expected}, got ${got.sha256} (${got.bytes} bytes)`
      })
    }
    yield* Effect.tryPromise({
      try: () => rename(partial, dest),
      catch: (error) => transportError(url, error)
    })
    return got
  }).pipe(
    Effect.onExit((exit) => exit._tag === "Success" ? Effect.void : Effect.promise(() => rm(partial, { force: true })))
  )
}
