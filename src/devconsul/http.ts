// Response and request helpers shared by the endpoints, written to match what
// Consul's agent/http.go puts on the wire (status codes, texts, headers).

import type { IncomingMessage, ServerResponse } from "node:http"

export const DATACENTER = "dc1"

/** An error that becomes a plain-text response, like Consul's HTTPError. */
export class HttpError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

export type Consistency = "leader" | "consistent" | "stale"

/** Query options every read accepts: consistency mode and datacenter. */
export function readOptions(url: URL): Consistency {
  const q = url.searchParams
  const dc = q.get("dc")
  if (dc !== null && dc !== "" && dc !== DATACENTER) throw new HttpError(500, "No path to datacenter")
  if (q.has("stale") && q.has("consistent")) {
    throw new HttpError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
  }
  return q.has("consistent") ? "consistent" : q.has("stale") ? "stale" : "leader"
}

/**
 * Headers as Node's flat raw form, [name, value, name, value, ...]: a write wakes
 * every watcher of a prefix at once, and this form skips the per-response work of
 * walking a headers object.
 */
export type Headers = ReadonlyArray<string>

/**
 * X-Consul-Index (never 0), KnownLeader and LastContact, which Consul sets on every
 * read before any body, 404s included.
 */
export function queryMeta(index: number, consistency: Consistency): Headers {
  return [
    "X-Consul-Index",
    String(index > 0 ? index : 1),
    "X-Consul-KnownLeader",
    "true",
    "X-Consul-LastContact",
    "0",
    "X-Consul-Effective-Consistency",
    consistency
  ]
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Headers = []): void {
  sendJsonText(res, status, JSON.stringify(body), headers)
}

/** For bodies already serialised (a Buffer shared by every watcher woken by one write). */
export function sendJsonText(res: ServerResponse, status: number, body: string | Buffer, headers: Headers = []): void {
  // One writeHead with every header takes Node's fast path (no setHeader calls).
  res.writeHead(status, [
    ...headers,
    "Content-Type",
    "application/json",
    "Content-Length",
    String(Buffer.byteLength(body))
  ])
  res.end(body)
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(text) })
  res.end(text)
}

/** A 404 with an empty body, as Consul answers a missing key. */
export function sendEmpty(res: ServerResponse, status: number, headers: Headers = []): void {
  res.writeHead(status, [...headers, "Content-Length", "0"])
  res.end()
}

export function methodNotAllowed(method: string | undefined): HttpError {
  return new HttpError(405, `method ${method ?? ""} not allowed`)
}

/**
 * Reads the whole body, refusing with 413 (Consul's message) when the declared or
 * actual length exceeds `limit`. Events, not `for await`: every status PUT comes
 * through here, and the stream's async iterator (a generator, an end-of-stream
 * watcher, a promise per chunk) cost more than the rest of the PUT's handling.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? "0")
  if (declared > limit) return Promise.reject(tooLarge(declared, limit))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let length = 0
    const onData = (chunk: Buffer) => {
      length += chunk.length
      if (length <= limit) return void chunks.push(chunk)
      done()
      // The rest is read and dropped, so the answer can still be sent on this connection.
      req.resume()
      reject(tooLarge(length, limit))
    }
    const onEnd = () => {
      done()
      resolve(Buffer.concat(chunks, length))
    }
    const onError = (error: Error) => {
      done()
      reject(error)
    }
    // A client that goes away before the end: nothing to answer, the request just ends.
    const onClose = () => {
      if (!req.complete) onError(new Error("request closed before its body ended"))
    }
    const done = () => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onError)
      req.off("close", onClose)
    }
    req.on("data", onData)
    req.on("end", onEnd)
    req.on("error", onError)
    req.on("close", onClose)
  })
}

function tooLarge(size: number, limit: number): HttpError {
  return new HttpError(
    413,
    `Request body(${size} bytes) too large, max size: ${limit} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`
  )
}
