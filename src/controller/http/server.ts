/**
 * The controller's HTTP server: node:http with Effect around it. It owns what every
 * route shares: what a request may send before its body is read (the route's body
 * limit and its authentication, `admit`: 413 and 401 without reading a byte), a cap
 * on connections and on body bytes buffered at once across all requests, timeouts
 * (slow clients, stuck handlers), JSON error bodies, one log line per request
 * (method, path, status, ms; never headers or bodies, which carry tokens and
 * signatures), and a graceful close when the scope ends: no new connections,
 * requests in flight finish, and whatever is still open after the grace is cut.
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import type { HttpRequest, HttpResponse, RequestHead } from "./types.ts"
import { jsonError } from "./types.ts"

/** GitHub's own cap on webhook payloads; nothing the controller accepts is larger. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024

/** What a request may do before its body is read, decided from its method, path and headers. */
export interface Admission {
  /** The largest body the route reads; 0: none. */
  readonly maxBodyBytes: number
  /** An answer sent without reading the body (401, 503); undefined: read it and handle. */
  readonly answer?: HttpResponse | undefined
}

export interface ServeOptions {
  readonly host: string
  readonly port: number
  /** Body limit and early answer per request; default: no body, nothing answered early. */
  readonly admit?: (head: RequestHead) => Admission
  /** Open connections beyond this are refused by the kernel's backlog; default 256. */
  readonly maxConnections?: number
  /**
   * Body bytes buffered at once across all requests; default 32 MiB. A request that
   * would go beyond it answers 503 at once. Bodies of up to SMALL_BODY_BYTES may use
   * the whole budget, larger ones leave SMALL_BODY_BYTES of it free, so a flood of large
   * bodies never stops a small webhook from being read.
   */
  readonly maxBufferedBytes?: number
  /** A route that takes longer answers 503 (GitHub gives up on a webhook after 10 s). */
  readonly handlerTimeoutMs?: number
  /** Time allowed to receive the headers, and the whole request. */
  readonly headersTimeoutMs?: number
  readonly requestTimeoutMs?: number
  /** After the scope closes, requests in flight get this long to finish. */
  readonly shutdownGraceMs?: number
}

export interface Listening {
  readonly url: string
  readonly port: number
}

export class ListenError
  extends Data.TaggedError("ListenError")<{ readonly address: string; readonly message: string }>
{}

type Handler<R> = (request: HttpRequest) => Effect.Effect<HttpResponse, never, R>

type BodyResult = { readonly ok: true; readonly body: Buffer } | {
  readonly ok: false
  readonly reason: "too-large" | "aborted" | "busy"
}

/** A body this small (a webhook of a push, a notify) always finds room in the budget. */
const SMALL_BODY_BYTES = 1024 * 1024

/** Body bytes buffered by every request in flight, against one budget. */
interface BodyBudget {
  /** Takes `n` more bytes for a body that is `total` bytes so far; false when there is no room. */
  readonly take: (n: number, total: number) => boolean
  readonly give: (n: number) => void
}

const bodyBudget = (max: number): BodyBudget => {
  let used = 0
  return {
    take: (n, total) => {
      const room = total <= SMALL_BODY_BYTES ? max : max - SMALL_BODY_BYTES
      if (used + n > room) return false
      used += n
      return true
    },
    give: (n) => {
      used -= n
    }
  }
}

/**
 * Reads the body within `limit` and the shared budget. The bytes taken from the
 * budget are given back when the answer is sent (`release`), not when reading ends:
 * the buffer lives until then.
 */
const readBody = (
  req: IncomingMessage,
  limit: number,
  budget: BodyBudget
): { readonly body: Promise<BodyResult>; readonly release: () => void } => {
  let held = 0
  const release = () => {
    budget.give(held)
    held = 0
  }
  const body = new Promise<BodyResult>((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const settle = (result: BodyResult) => {
      if (settled) return
      settled = true
      if (!result.ok) {
        chunks.length = 0
        release()
      }
      resolve(result)
    }
    req.on("data", (chunk: Buffer) => {
      if (settled) return
      size += chunk.length
      // Stop buffering; the rest is discarded as it arrives (bounded by requestTimeout).
      if (size > limit) return settle({ ok: false, reason: "too-large" })
      if (!budget.take(chunk.length, size)) return settle({ ok: false, reason: "busy" })
      held += chunk.length
      chunks.push(chunk)
    })
    req.on("end", () => settle({ ok: true, body: Buffer.concat(chunks, size) }))
    req.on("error", () => settle({ ok: false, reason: "aborted" }))
    req.on("close", () => settle({ ok: false, reason: "aborted" }))
  })
  return { body, release }
}

/**
 * After a 413 the rest of the body is read and thrown away, so a client still
 * uploading gets the answer instead of a reset (closing the socket under it is an
 * EPIPE on its side); a client that keeps sending past another `limit` is cut off.
 */
const discard = (req: IncomingMessage, limit: number) => {
  let drained = 0
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length
    if (drained > limit) req.socket.destroy()
  })
  req.resume()
}

const formatUrl = (address: AddressInfo): string => {
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}`
}

/** Quiet paths: probes hit these every few seconds and would drown the real lines. */
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"])

/**
 * Listens until the surrounding scope closes. The handler runs with the services the
 * caller has (Consul, logging); it never fails: routes turn their errors into answers.
 */
export const serve = <R>(
  options: ServeOptions,
  handler: Handler<R>
): Effect.Effect<Listening, ListenError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const run = Effect.runPromiseExitWith(context)
    const admit = options.admit ?? ((): Admission => ({ maxBodyBytes: 0 }))
    const budget = bodyBudget(options.maxBufferedBytes ?? 32 * 1024 * 1024)
    // GitHub gives up on a webhook after 10 s: answer (503, it redelivers) before that.
    const handlerTimeoutMs = options.handlerTimeoutMs ?? 8_000
    const graceMs = options.shutdownGraceMs ?? 10_000
    let closing = false

    const send = (res: ServerResponse, response: HttpResponse, forceClose: boolean) => {
      if (res.headersSent || res.destroyed) return
      const headers: Record<string, string | number> = {
        ...response.headers,
        "content-length": Buffer.byteLength(response.body),
        "cache-control": "no-store"
      }
      if (forceClose || closing) headers.connection = "close"
      res.writeHead(response.status, headers)
      res.end(response.body)
    }

    const logLine = (method: string, path: string, status: number, started: number) => {
      const fields = { method, path, status, ms: Math.round(performance.now() - started) }
      const line = QUIET_PATHS.has(path) && status < 500
        ? Effect.logDebug("http", fields)
        : Effect.logInfo("http", fields)
      void run(line)
    }

    const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
      const started = performance.now()
      const method = req.method ?? "GET"
      const url = new URL(req.url ?? "/", "http://controller.invalid")
      const path = url.pathname
      const head = { method, path, query: url.searchParams, headers: req.headers }
      const admission = admit(head)
      const limit = admission.maxBodyBytes
      // The unread body of an early answer is drained without buffering (see discard).
      const early = (response: HttpResponse) => {
        discard(req, MAX_BODY_BYTES)
        send(res, response, false)
        logLine(method, path, response.status, started)
      }
      if (admission.answer !== undefined) return early(admission.answer)
      const declared = Number(req.headers["content-length"] ?? "0")
      if (Number.isFinite(declared) && declared > limit) {
        return early(
          jsonError(413, limit === 0 ? `${method} ${path} takes no body` : `the body is over ${limit} bytes`)
        )
      }
      const reading = readBody(req, limit, budget)
      const body = await reading.body
      if (!body.ok) {
        if (body.reason === "too-large") {
          discard(req, limit)
          send(res, jsonError(413, `the body is over ${limit} bytes`), false)
          logLine(method, path, 413, started)
        } else if (body.reason === "busy") {
          early(jsonError(503, "the controller is reading too many request bodies at once; try again"))
        }
        return
      }
      const request: HttpRequest = { ...head, body: body.body }
      let exit: Exit.Exit<HttpResponse>
      try {
        exit = await run(
          handler(request).pipe(
            Effect.timeoutOrElse({
              duration: handlerTimeoutMs,
              orElse: () =>
                Effect.succeed(jsonError(503, `the request took longer than ${handlerTimeoutMs} ms; try again`))
            })
          )
        )
      } finally {
        reading.release()
      }
      let response: HttpResponse
      if (Exit.isSuccess(exit)) {
        response = exit.value
      } else {
        void run(Effect.logError("request failed", { method, path }, exit.cause))
        response = Cause.hasInterruptsOnly(exit.cause)
          ? jsonError(503, "the controller is shutting down")
          : jsonError(500, "internal error; see the controller's log")
      }
      send(res, response, false)
      logLine(method, path, response.status, started)
    }

    const server: Server = createServer((req, res) => {
      onRequest(req, res).catch((cause: unknown) => {
        void run(Effect.logError("request crashed", { cause: String(cause) }))
        send(res, jsonError(500, "internal error; see the controller's log"), true)
      })
    })
    server.headersTimeout = options.headersTimeoutMs ?? 10_000
    server.requestTimeout = options.requestTimeoutMs ?? 60_000
    server.keepAliveTimeout = 5_000
    server.maxConnections = options.maxConnections ?? 256

    const address = `${options.host}:${options.port}`
    yield* Effect.acquireRelease(
      Effect.callback<void, ListenError>((resume) => {
        const onError = (error: NodeJS.ErrnoException) =>
          resume(
            Effect.fail(
              new ListenError({
                address,
                message: `cannot listen on ${address} (SACAR_LISTEN): ${error.code ?? error.message}`
              })
            )
          )
        server.once("error", onError)
        server.listen(options.port, options.host, () => {
          server.off("error", onError)
          resume(Effect.void)
        })
      }),
      () =>
        Effect.callback<void>((resume) => {
          closing = true
          const cut = setTimeout(() => server.closeAllConnections(), graceMs)
          server.close(() => {
            clearTimeout(cut)
            resume(Effect.void)
          })
          server.closeIdleConnections()
        }).pipe(Effect.tap(() => Effect.logInfo("http server closed")))
    )
    const bound = server.address() as AddressInfo
    const listening = { url: formatUrl(bound), port: bound.port }
    yield* Effect.logInfo(`listening on ${listening.url}`)
    return listening
  })
