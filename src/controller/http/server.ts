/**
 * The controller's HTTP server: node:http with Effect around it. It owns what every
 * route shares: the body size limit (413 before a route sees anything), timeouts
 * (slow clients, stuck handlers), JSON error bodies, one log line per request
 * (method, path, status, ms; never headers or bodies, which carry tokens and
 * signatures), and a graceful close when the scope ends: no new connections,
 * requests in flight finish, and whatever is still open after the grace is cut.
 */
import { Cause, Data, Effect, Exit, Scope } from "effect"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import type { HttpRequest, HttpResponse } from "./types.ts"
import { jsonError } from "./types.ts"

/** GitHub's own cap on webhook payloads; nothing the controller accepts is larger. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024

export interface ServeOptions {
  readonly host: string
  readonly port: number
  readonly maxBodyBytes?: number
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
  readonly reason: "too-large" | "aborted"
}

const readBody = (req: IncomingMessage, limit: number): Promise<BodyResult> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const settle = (result: BodyResult) => {
      if (settled) return
      settled = true
      resolve(result)
    }
    req.on("data", (chunk: Buffer) => {
      if (settled) return
      size += chunk.length
      if (size > limit) {
        // Stop buffering; the rest is discarded as it arrives (bounded by requestTimeout).
        chunks.length = 0
        settle({ ok: false, reason: "too-large" })
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => settle({ ok: true, body: Buffer.concat(chunks, size) }))
    req.on("error", () => settle({ ok: false, reason: "aborted" }))
    req.on("close", () => settle({ ok: false, reason: "aborted" }))
  })

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
    const limit = options.maxBodyBytes ?? MAX_BODY_BYTES
    const handlerTimeoutMs = options.handlerTimeoutMs ?? 20_000
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
      const declared = Number(req.headers["content-length"] ?? "0")
      if (Number.isFinite(declared) && declared > limit) {
        discard(req, limit)
        send(res, jsonError(413, `request body is ${declared} bytes; the limit is ${limit} bytes`), false)
        logLine(method, path, 413, started)
        return
      }
      const body = await readBody(req, limit)
      if (!body.ok) {
        if (body.reason === "too-large") {
          discard(req, limit)
          send(res, jsonError(413, `request body is over the limit of ${limit} bytes`), false)
          logLine(method, path, 413, started)
        }
        return
      }
      const request: HttpRequest = { method, path, query: url.searchParams, headers: req.headers, body: body.body }
      const exit = await run(
        handler(request).pipe(
          Effect.timeoutOrElse({
            duration: handlerTimeoutMs,
            orElse: () =>
              Effect.succeed(jsonError(503, `the request took longer than ${handlerTimeoutMs} ms; try again`))
          })
        )
      )
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
