/**
 * One verified transfer: the body is streamed into a sink, hashed as it goes, and the
 * sink is committed only when the body is complete and matches the expected sha256;
 * otherwise (a failure, an interruption, a stall, a mismatch) it is discarded.
 */
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { Transform } from "node:stream"
import type { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { DownloadError, transportError } from "./errors.ts"
import type { Sink } from "./sink.ts"

export interface Downloaded {
  readonly bytes: number
  readonly sha256: string
}

/** What a transfer wrote: its size, its digest and the committed sink. */
export interface Transferred<S extends Sink> extends Downloaded {
  readonly sink: S
}

/** Opens the body; the signal aborts the request (interruption, or a stall). */
export type OpenBody = (signal: AbortSignal) => Promise<Readable>

class Stalled extends Error {}

export const transferVerified = <S extends Sink>(options: {
  readonly url: string
  readonly sha256?: string | undefined
  readonly stallMs: number
  readonly open: OpenBody
  /** Made once the body is open, so a refused request (404) leaves nothing to remove. */
  readonly sink: () => Promise<S>
}): Effect.Effect<Transferred<S>, DownloadError> =>
  Effect.suspend(() => {
    const { url } = options
    let sink: S | undefined
    const transfer = Effect.tryPromise({
      try: async (interrupt) => {
        // One controller for both reasons to stop (interruption, a stall): every node
        // starts a download as it takes a release up, so its start is kept to what a
        // transfer needs (no combined signal, the hash made once there is a body).
        const abort = new AbortController()
        const stalled = () => abort.abort(new Stalled())
        const onInterrupt = () => abort.abort(interrupt.reason)
        if (interrupt.aborted) onInterrupt()
        else interrupt.addEventListener("abort", onInterrupt, { once: true })
        const timer = setTimeout(stalled, options.stallMs)
        const signal = abort.signal
        let bytes = 0
        try {
          const body = await options.open(signal)
          sink = await options.sink().catch((error: unknown) => {
            body.destroy()
            throw error
          })
          const hash = createHash("sha256")
          const meter = new Transform({
            transform(chunk: Buffer, _enc, callback) {
              timer.refresh()
              hash.update(chunk)
              bytes += chunk.length
              callback(null, chunk)
            }
          })
          await pipeline(body, meter, sink.writable, { signal })
          return { bytes, sha256: hash.digest("hex") }
        } catch (error) {
          if (signal.reason instanceof Stalled && !interrupt.aborted) {
            throw new DownloadError({ url, retryable: true, message: `${url}: no data for ${options.stallMs} ms` })
          }
          throw error
        } finally {
          clearTimeout(timer)
          interrupt.removeEventListener("abort", onInterrupt)
        }
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
      const done = sink!
      yield* Effect.tryPromise({
        try: () => done.commit(),
        catch: (error) => transportError(url, error)
      })
      return { ...got, sink: done }
    }).pipe(
      Effect.onExit((exit) =>
        exit._tag === "Success" || sink === undefined
          ? Effect.void
          : Effect.promise(() => sink!.discard().catch(() => undefined))
      )
    )
  })
