/**
 * A gzip-compressed tar unpacked into a directory as its bytes arrive, so extraction
 * ends when the download does. Every entry is judged before anything of it is written
 * (node-tar's `filter` runs ahead of its own checks, which stay on as a second line in
 * strict mode). Once one entry is refused, the rest is only read past, never written:
 * the caller still reads the whole body, because a checksum mismatch must be reported
 * as such even when the wrong bytes also hold a hostile entry.
 */
import { Unpack } from "tar"
import type { ReadEntry } from "tar"
import { EntryJudge } from "./extract.ts"
import type { ExtractLimits } from "./extract.ts"

export type UnpackOutcome =
  | { readonly _tag: "Unpacked" }
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "Broken"; readonly error: unknown }

export interface Unpacking {
  readonly judge: EntryJudge
  /** Feeds the next bytes; resolves when more may be fed (at once, when it has stopped). */
  readonly write: (chunk: Buffer) => Promise<void>
  /** The archive's bytes have all been fed. */
  readonly end: () => void
  /** Abandons the extraction: nothing more is written. */
  readonly stop: () => void
  /** Settles once nothing is being written any more; never rejects. */
  readonly outcome: Promise<UnpackOutcome>
}

// After an error node-tar may still be finishing files it had started.
const SETTLE_AFTER_ERROR_MS = 500

export const startUnpack = (staging: string, limits: ExtractLimits): Unpacking => {
  const judge = new EntryJudge(limits)
  let refused: string | undefined
  let failure: unknown
  let stopped = false
  let settled = false
  let waiting: Array<() => void> = []
  const wake = () => {
    const woken = waiting
    waiting = []
    for (const resolve of woken) resolve()
  }
  let resolveOutcome!: (outcome: UnpackOutcome) => void
  const outcome = new Promise<UnpackOutcome>((resolve) => {
    resolveOutcome = resolve
  })
  const unpack: Unpack = new Unpack({
    cwd: staging,
    strict: true,
    preserveOwner: false,
    filter: (_path, entry) => refused === undefined && (refused = judge.judge(entry as ReadEntry)) === undefined
  })
  const settle = () => {
    if (settled) return
    settled = true
    stopped = true
    wake()
    refused ??= failure === undefined ? judge.finalLinks() : undefined
    resolveOutcome(
      refused !== undefined
        ? { _tag: "Refused", reason: refused }
        : failure !== undefined
        ? { _tag: "Broken", error: failure }
        : { _tag: "Unpacked" }
    )
  }
  const fail = (error: unknown) => {
    failure ??= error
    stopped = true
    wake()
    setTimeout(settle, SETTLE_AFTER_ERROR_MS)
  }
  unpack.on("error", fail)
  unpack.on("close", settle)
  unpack.on("drain", wake)
  return {
    judge,
    write: (chunk) => {
      if (stopped || unpack.write(chunk)) return Promise.resolve()
      return new Promise((resolve) => waiting.push(resolve))
    },
    end: () => {
      if (!stopped) unpack.end()
    },
    stop: () => {
      if (settled) return
      fail(new Error("interrupted"))
      unpack.abort(new Error("interrupted"))
    },
    outcome
  }
}
