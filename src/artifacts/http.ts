/**
 * https:// and http:// bodies through node:http(s), aborted by the signal, redirects
 * followed. Not `fetch`: its implementation (undici) is loaded on first use, 200-400 ms
 * of CPU on a busy machine paid by every node at its first download, the moment a
 * release is waited for; node:http is loaded already (the Consul client uses it).
 * The bytes are the artifact's as served: no Accept-Encoding is sent, nothing is decoded.
 */
import { request as httpRequest } from "node:http"
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http"
import { request as httpsRequest } from "node:https"
import type { Readable } from "node:stream"
import { httpStatusError } from "./errors.ts"

/** As many as fetch follows. */
const MAX_REDIRECTS = 20

// Both loaded already (the Consul client imports them): a static import, since a
// dynamic one resolved the module through the ESM loader at the start of every download.
const get = (url: URL, signal: AbortSignal, headers: OutgoingHttpHeaders): Promise<IncomingMessage> => {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, signal }, resolve)
    req.on("error", reject)
    req.end()
  })
}

export const fetchBody = async (
  url: string,
  signal: AbortSignal,
  headers: Record<string, string> = {}
): Promise<Readable> => {
  let at = new URL(url)
  let sent: OutgoingHttpHeaders = headers
  for (let hops = 0;; hops++) {
    const response = await get(at, signal, sent)
    const status = response.statusCode ?? 0
    const location = response.headers.location
    if (status >= 300 && status < 400 && status !== 304 && location !== undefined) {
      response.resume()
      if (hops >= MAX_REDIRECTS) throw httpStatusError(url, status, "too many redirects")
      const next = new URL(location, at)
      // As fetch does: credentials stay with the origin they were given for.
      if (next.origin !== at.origin) {
        sent = Object.fromEntries(Object.entries(sent).filter(([name]) => name.toLowerCase() !== "authorization"))
      }
      at = next
      continue
    }
    if (status < 200 || status >= 300) {
      response.resume()
      throw httpStatusError(url, status, response.statusMessage ?? "")
    }
    return response
  }
}
