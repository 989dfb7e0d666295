/** https:// and http:// bodies through fetch, aborted by the signal. */
import { Readable } from "node:stream"
import type { ReadableStream as WebReadableStream } from "node:stream/web"
import { httpStatusError } from "./errors.ts"

export const fetchBody = async (
  url: string,
  signal: AbortSignal,
  headers: Record<string, string> = {}
): Promise<Readable> => {
  const response = await fetch(url, { signal, headers, redirect: "follow" })
  if (!response.ok || response.body === null) {
    await response.body?.cancel().catch(() => undefined)
    throw httpStatusError(url, response.status, response.statusText)
  }
  return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>)
}
