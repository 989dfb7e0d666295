/**
 * The Consul service over Consul's HTTP API, spoken with node:http(s) and one
 * keep-alive Agent per layer. Not the `consul` npm client: it cannot abort a request
 * (an interrupted blocking query would hold its socket for up to ten minutes), it
 * rounds flags above 2^53, and it reports refusals and 404s inconsistently. See
 * docs/consul-layer.md and the "Consul client" section of docs/decisions.md.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as http from "node:http"
import * as https from "node:https"
import { parseDuration } from "../spec/duration.ts"
import type { ConsulConfig } from "./config.ts"
import { Consul, ConsulRequestError, ConsulUnavailable } from "./consul.ts"
import type {
  BlockingOptions,
  ConsulError,
  KvEntry,
  PutOptions,
  SessionInfo,
  SessionOptions,
  TxnOp,
  TxnResult
} from "./consul.ts"
import { keyRefusal } from "./key-rules.ts"

const DEFAULT_REQUEST_TIMEOUT_MS = 15_000
/** What Consul uses when a blocking read names no wait (default_query_time). */
const DEFAULT_WAIT_MS = 5 * 60_000

interface RawResponse {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

type Query = Record<string, string | number | boolean | undefined>

interface Request {
  readonly operation: string
  readonly method: "GET" | "PUT" | "DELETE"
  readonly path: string
  readonly query?: Query
  readonly body?: string
  readonly timeoutMs: number
  /** The KV keys the request names, so a refused key can be named in the error. */
  readonly keys?: ReadonlyArray<string>
}

/**
 * A query value as URLSearchParams writes it (application/x-www-form-urlencoded):
 * encodeURIComponent, plus the characters it leaves alone, and spaces as `+`.
 */
const encodeQueryValue = (value: string) =>
  encodeURIComponent(value).replace(
    /[!'()~]|%20/g,
    (c) => c === "%20" ? "+" : `%${c.charCodeAt(0).toString(16).toUpperCase()}`
  )

/** Keys go in the path; encode each segment but keep the slashes Consul splits on. */
const encodeKey = (key: string) => key.split("/").map(encodeURIComponent).join("/")

const oneLine = (text: string, max = 300) => {
  const line = text.replace(/\s+/g, " ").trim()
  return line.length > max ? `${line.slice(0, max)}…` : line
}

/**
 * JSON.parse that keeps `Flags` exact: the Go lock flags (3304740253564472344) do not
 * fit a double, so the reviver takes the number's source text instead (Node >= 21).
 */
export const parseConsulJson = (text: string): unknown =>
  JSON.parse(
    text,
    function(this: unknown, key: string, value: unknown, context?: { readonly source?: string }) {
      if (key === "Flags" && typeof value === "number" && context?.source !== undefined) return context.source
      return value
    } as (this: unknown, key: string, value: unknown) => unknown
  )

/** JSON.stringify with `Flags` strings written as bare uint64 literals. */
const stringifyWithFlags = (value: unknown): string => JSON.stringify(value).replace(/"Flags":"(\d+)"/g, "\"Flags\":$1")

interface RawEntry {
  readonly Key: string
  readonly Value?: string | null
  readonly Flags?: string | number
  readonly CreateIndex?: number
  readonly ModifyIndex?: number
  readonly LockIndex?: number
  readonly Session?: string
}

export const decodeEntry = (raw: RawEntry): KvEntry => ({
  key: raw.Key,
  value: raw.Value === null || raw.Value === undefined ? null : Buffer.from(raw.Value, "base64").toString("utf8"),
  flags: raw.Flags === undefined ? "0" : String(raw.Flags),
  createIndex: raw.CreateIndex ?? 0,
  modifyIndex: raw.ModifyIndex ?? 0,
  lockIndex: raw.LockIndex ?? 0,
  ...(raw.Session !== undefined && raw.Session !== "" ? { session: raw.Session } : {})
})

const indexOf = (res: RawResponse): number => {
  const header = res.headers["x-consul-index"]
  const n = Number(Array.isArray(header) ? header[0] : header)
  return Number.isSafeInteger(n) && n >= 0 ? n : 0
}

/**
 * Consul answers some caller mistakes with 500 (an acquire with a dead session, a
 * TTL out of range). Retrying those would never help, so they are request errors.
 */
const CALLER_MISTAKES_AS_500 = [
  /invalid session/i,
  /session .* not found/i,
  /invalid session ttl/i,
  /missing (key|session)/i,
  // A session on a node the catalog does not have, or bound to a check it lacks.
  /missing node registration/i,
  /missing check .* registration/i,
  /check .* is in critical state/i
]

/**
 * Consul creates a session only on a node in its catalog, bound to checks that node has
 * (serfHealth by default, which a node's own agent registers). The reconciler's sessions
 * are created on SACAR_CONSUL_NODE (default SACAR_NODE), so this is what an operator sees
 * when that is not the node name of the Consul agent it talks to.
 */
const unknownNode = (error: ConsulError, node: string | undefined): ConsulError =>
  error._tag === "ConsulRequestError" && /missing node registration|missing check .* registration/i.test(error.message)
    ? new ConsulRequestError({
      operation: error.operation,
      status: error.status,
      message:
        `${error.message}: Consul's catalog has no node ${
          node === undefined ? "for this agent" : JSON.stringify(node)
        } with a serfHealth check. The reconciler creates its sessions on SACAR_CONSUL_NODE (default SACAR_NODE), ` +
        "which must be the node name of the Consul agent it talks to (its node_name, as `consul members` lists it; " +
        "in a Nomad job, ${attr.unique.consul.name}); a node's agent registers it"
    })
    : error

/** The first of `keys` Consul 1.21.6+ refuses, with why. */
const refusedKey = (keys: ReadonlyArray<string>) => {
  for (const key of keys) {
    const why = keyRefusal(key)
    if (why !== undefined) return { key, why }
  }
  return undefined
}

const flagsText = (flags: string | bigint) => {
  const text = typeof flags === "bigint" ? flags.toString() : flags
  if (!/^\d+$/.test(text) || BigInt(text) >= 2n ** 64n) throw new Error(`flags must be a uint64, got ${text}`)
  return text
}

const txnBody = (ops: ReadonlyArray<TxnOp>) =>
  stringifyWithFlags(ops.map((op) => {
    const kv: Record<string, unknown> = { Verb: op.verb, Key: op.key }
    if ("value" in op) kv.Value = Buffer.from(op.value, "utf8").toString("base64")
    if ("flags" in op && op.flags !== undefined) kv.Flags = flagsText(op.flags)
    if ("index" in op) kv.Index = op.index
    if ("session" in op) kv.Session = op.session
    return { KV: kv }
  }))

/**
 * Retry-After as seconds or an HTTP date (RFC 9110); undefined when absent or unreadable.
 * Consul's rate limiter sends neither today, but proxies in front of it do.
 */
export const retryAfterMillis = (header: string | ReadonlyArray<string> | undefined, nowMs: number) => {
  const text = (Array.isArray(header) ? header[0] : header)?.trim()
  if (text === undefined || text === "") return undefined
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs)
}

/** Go's duration text for whole milliseconds, as Consul parses it. */
const goMillis = (ms: number) => ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`

/** Milliseconds from a Go duration Consul would accept, or the server's default. */
const waitMillis = (wait: string | undefined) =>
  (wait === undefined ? undefined : parseDuration(wait)) ?? DEFAULT_WAIT_MS

const makeAgent = (config: ConsulConfig): http.Agent =>
  config.address.startsWith("https:")
    ? new https.Agent({
      keepAlive: true,
      ...(config.tls.ca !== undefined ? { ca: config.tls.ca } : {}),
      ...(config.tls.serverName !== undefined ? { servername: config.tls.serverName } : {}),
      ...(config.tls.cert !== undefined ? { cert: config.tls.cert } : {}),
      ...(config.tls.key !== undefined ? { key: config.tls.key } : {}),
      rejectUnauthorized: config.tls.verify
    })
    : new http.Agent({ keepAlive: true })

/** The Consul service for `config`; the Agent (and its sockets) is closed with the scope. */
export const makeConsul = (config: ConsulConfig) =>
  Effect.gen(function*() {
    const agent = yield* Effect.acquireRelease(Effect.sync(() => makeAgent(config)), (a) =>
      Effect.sync(() => a.destroy()))
    const transport = config.address.startsWith("https:") ? https : http
    const requestTimeoutMs = config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const sessionTtlMinMs = config.sessionTtlMinMs
    const address = config.address
    // Sent on every request as the Go api does (its ns and partition query options).
    const scope: Query = { ns: config.namespace, partition: config.partition }

    const unavailable = (operation: string, message: string) =>
      new ConsulUnavailable({ address, operation, message })

    // What every request shares, worked out once: every node sends several requests per
    // reaction (each watch answer is followed by the next blocking read), and a URL
    // object with its search params per request was a visible part of a reaction's CPU.
    const base = new URL(address)
    const target = {
      protocol: base.protocol,
      hostname: base.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: base.port,
      basePath: base.pathname.replace(/\/$/, "")
    }
    const baseHeaders: Readonly<Record<string, string>> = {
      ...(config.token !== undefined ? { "X-Consul-Token": Redacted.value(config.token) } : {}),
      ...(config.httpAuth !== undefined
        ? { Authorization: `Basic ${Buffer.from(Redacted.value(config.httpAuth)).toString("base64")}` }
        : {})
    }
    /** The path and query as URLSearchParams would write them: `name=` for a flag, nothing for absent or false. */
    const pathWithQuery = (req: Request) => {
      let query = ""
      const add = (q: Query | undefined) => {
        if (q === undefined) return
        for (const name in q) {
          const value = q[name]
          if (value === undefined || value === false) continue
          query += `${query === "" ? "?" : "&"}${name}=${value === true ? "" : encodeQueryValue(String(value))}`
        }
      }
      add(scope)
      add(req.query)
      return `${target.basePath}${req.path}${query}`
    }

    const send = (req: Request): Effect.Effect<RawResponse, ConsulUnavailable> =>
      Effect.callback<RawResponse, ConsulUnavailable>((resume) => {
        const options: http.RequestOptions = {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          path: pathWithQuery(req),
          method: req.method,
          agent,
          headers: req.body === undefined
            ? baseHeaders
            : { ...baseHeaders, "Content-Length": String(Buffer.byteLength(req.body)) }
        }
        let settled = false
        let current: http.ClientRequest | undefined
        let timer: NodeJS.Timeout | undefined
        const finish = (effect: Effect.Effect<RawResponse, ConsulUnavailable>) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resume(effect)
        }
        const attempt = (retryOnStaleSocket: boolean) => {
          let responded = false
          const r = transport.request(options)
          current = r
          r.on("response", (res) => {
            responded = true
            const chunks: Array<Buffer> = []
            res.on("data", (chunk: Buffer) => chunks.push(chunk))
            // Resume a tick later: the Agent frees the socket after "end", and a caller's
            // next request should reuse it instead of opening another one.
            res.on("end", () =>
              setImmediate(() =>
                finish(
                  Effect.succeed({
                    status: res.statusCode ?? 0,
                    headers: res.headers,
                    body: Buffer.concat(chunks).toString("utf8")
                  })
                )
              ))
            res.on("error", (error) => finish(Effect.fail(unavailable(req.operation, oneLine(error.message)))))
          })
          r.on("error", (error: NodeJS.ErrnoException) => {
            if (settled)
              return
            // A kept-alive socket the server closed while idle: the request never
            // reached Consul, so sending it again on a fresh socket is safe.
            if (retryOnStaleSocket && !responded && r.reusedSocket && error.code === "ECONNRESET")
              return attempt(false)
            finish(
              Effect.fail(
                unavailable(req.operation, oneLine(error.code ? `${error.code}: ${error.message}` : error.message))
              )
            )
          })
          r.end(req.body)
        }
        timer = setTimeout(() => {
          current?.destroy()
          finish(Effect.fail(unavailable(req.operation, `no answer within ${req.timeoutMs} ms`)))
        }, req.timeoutMs)
        attempt(true)
        return Effect.sync(() => {
          settled = true
          clearTimeout(timer)
          current?.destroy()
        })
      })

    /**
     * The one rule for what is worth retrying: server errors (but not the caller's
     * mistakes Consul answers with 500) and 429, which Consul 1.15+ answers when its
     * rate limiter refuses a request and an agent answers past
     * http_max_conns_per_client. Both become ConsulUnavailable, which every retry loop
     * (watch, lock, semaphore, the reconciler's) already treats as "later".
     */
    const refusal = (req: Request, res: RawResponse, now: number): ConsulError => {
      const { operation } = req
      const text = oneLine(res.body)
      const message = text === "" ? `HTTP ${res.status}` : text
      if (res.status === 429 || (res.status >= 500 && !CALLER_MISTAKES_AS_500.some((re) => re.test(text)))) {
        const retryAfterMs = retryAfterMillis(res.headers["retry-after"], now)
        return new ConsulUnavailable({
          address,
          operation,
          message: `HTTP ${res.status}: ${message}`,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
        })
      }
      if (res.status === 500 && /invalid session ttl/i.test(text)) {
        return new ConsulRequestError({
          operation,
          status: res.status,
          message: `${message} (this Consul's session_ttl_min is higher: set SACAR_SESSION_TTL_MIN to it)`
        })
      }
      const refused = res.status === 400 ? refusedKey(req.keys ?? []) : undefined
      if (refused !== undefined) {
        return new ConsulRequestError({
          operation,
          status: res.status,
          message: `Consul refused the key ${JSON.stringify(refused.key)}, which ${refused.why} ` +
            `(Consul 1.21.6+ refuses such keys): ${message}`
        })
      }
      return new ConsulRequestError({ operation, status: res.status, message })
    }

    const json = (operation: string, res: RawResponse): Effect.Effect<unknown, ConsulError> =>
      Effect.try({
        try: () => parseConsulJson(res.body),
        catch: () => unavailable(operation, `answer is not JSON: ${oneLine(res.body, 120)}`)
      })

    /** Sends and turns non-2xx into errors, except the statuses in `accept`. */
    const call = (req: Request, accept: ReadonlyArray<number> = []) =>
      Effect.flatMap(send(req), (res) =>
        (res.status >= 200 && res.status < 300) || accept.includes(res.status)
          ? Effect.succeed(res)
          : Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.fail(refusal(req, res, now))))

    const blockingRequest = (
      operation: string,
      path: string,
      query: Query,
      options: BlockingOptions | undefined
    ): Request => {
      const blocking = options !== undefined && options.index > 0
      const waitMs = waitMillis(options?.wait)
      return {
        operation,
        method: "GET",
        path,
        query: {
          ...query,
          ...(blocking ? { index: options.index, wait: options.wait } : {}),
          consistent: options?.consistent,
          stale: options?.stale
        },
        // Consul holds a blocking read for up to wait + wait/16; only then is silence a failure.
        timeoutMs: blocking ? waitMs + Math.ceil(waitMs / 16) + requestTimeoutMs : requestTimeoutMs
      }
    }

    // Every Consul KV read carries X-Consul-Index, 404s included. Without it the answer
    // came from something else (a proxy, a wrong port), and an empty 404 from it must not
    // read as "no keys": that would make the CLI report an empty cluster.
    const fromConsul = (operation: string) => (res: RawResponse) =>
      res.headers["x-consul-index"] === undefined
        ? Effect.fail(
          new ConsulUnavailable({
            address: config.address,
            operation,
            message: `HTTP ${res.status} without an X-Consul-Index header: this is not a Consul HTTP API`
          })
        )
        : Effect.succeed(res)

    const entries = (operation: string, res: RawResponse) =>
      res.status === 404
        ? Effect.succeed<ReadonlyArray<KvEntry>>([])
        : Effect.map(json(operation, res), (body) =>
          (Array.isArray(body) ? body : []).map((e) => decodeEntry(e as RawEntry)))

    const get = (key: string, options?: BlockingOptions) => {
      const operation = `kv get ${key}`
      return call({ ...blockingRequest(operation, `/v1/kv/${encodeKey(key)}`, {}, options), keys: [key] }, [404]).pipe(
        Effect.flatMap(fromConsul(operation)),
        Effect.flatMap((res) =>
          Effect.map(
            entries(operation, res),
            (list) => ({ value: list.find((e) => e.key === key), index: indexOf(res) })
          )
        )
      )
    }

    const list = (prefix: string, options?: BlockingOptions) => {
      const operation = `kv list ${prefix}`
      return call(
        { ...blockingRequest(operation, `/v1/kv/${encodeKey(prefix)}`, { recurse: true }, options), keys: [prefix] },
        [404]
      ).pipe(
        Effect.flatMap(fromConsul(operation)),
        Effect.flatMap((res) => Effect.map(entries(operation, res), (value) => ({ value, index: indexOf(res) })))
      )
    }

    // One read of key names serves both: `keys` (optionally up to a separator) and the
    // blocking `listKeys`, which also answers with the index to block on next.
    const readKeys = (prefix: string, separator: string | undefined, options: BlockingOptions | undefined) => {
      const operation = `kv keys ${prefix}`
      return call(
        {
          ...blockingRequest(operation, `/v1/kv/${encodeKey(prefix)}`, { keys: true, separator }, options),
          keys: [prefix]
        },
        [404]
      ).pipe(
        Effect.flatMap(fromConsul(operation)),
        Effect.flatMap((res) =>
          res.status === 404
            ? Effect.succeed({ value: [] as ReadonlyArray<string>, index: indexOf(res) })
            : Effect.map(json(operation, res), (body) => ({
              value: (Array.isArray(body) ? body.map(String) : []) as ReadonlyArray<string>,
              index: indexOf(res)
            }))
        )
      )
    }

    const keys = (prefix: string, separator?: string) =>
      Effect.map(readKeys(prefix, separator, undefined), (answer) => answer.value)

    const listKeys = (prefix: string, options?: BlockingOptions) => readKeys(prefix, undefined, options)

    const put = (key: string, value: string, options?: PutOptions) => {
      const operation = `kv put ${key}`
      return Effect.try({
        try: () => options?.flags === undefined ? undefined : flagsText(options.flags),
        catch: (error) => new ConsulRequestError({ operation, status: 0, message: (error as Error).message })
      }).pipe(
        Effect.flatMap((flags) =>
          call({
            operation,
            method: "PUT",
            path: `/v1/kv/${encodeKey(key)}`,
            query: { flags, cas: options?.cas, acquire: options?.acquire, release: options?.release },
            body: value,
            timeoutMs: requestTimeoutMs,
            keys: [key]
          })
        ),
        // Anything but a literal true is a refusal: callers re-read when it matters.
        Effect.map((res) => res.body.trim() === "true")
      )
    }

    const del = (key: string, options?: { readonly recurse?: boolean; readonly cas?: number }) =>
      call({
        operation: `kv delete ${key}`,
        method: "DELETE",
        path: `/v1/kv/${encodeKey(key)}`,
        query: { recurse: options?.recurse, cas: options?.cas },
        timeoutMs: requestTimeoutMs,
        keys: [key]
      }).pipe(Effect.map((res) => res.body.trim() === "true"))

    const txn = (ops: ReadonlyArray<TxnOp>) => {
      const operation = `txn (${ops.length} ops)`
      return Effect.try({
        try: () => txnBody(ops),
        catch: (error) => new ConsulRequestError({ operation, status: 0, message: (error as Error).message })
      }).pipe(
        Effect.flatMap((body) =>
          call({
            operation,
            method: "PUT",
            path: "/v1/txn",
            body,
            timeoutMs: requestTimeoutMs,
            keys: ops.map((op) => op.key)
          }, [409])
        ),
        Effect.flatMap((res) =>
          Effect.map(json(operation, res), (parsed): TxnResult => {
            const body = (parsed ?? {}) as {
              readonly Results?: ReadonlyArray<{ readonly KV?: RawEntry }> | null
              readonly Errors?: ReadonlyArray<{ readonly OpIndex: number; readonly What: string }> | null
            }
            if (res.status === 409 || (body.Errors ?? []).length > 0) {
              return { ok: false, errors: (body.Errors ?? []).map((e) => ({ opIndex: e.OpIndex, what: e.What })) }
            }
            return {
              ok: true,
              entries: (body.Results ?? []).flatMap((r) => (r.KV === undefined ? [] : [decodeEntry(r.KV)]))
            }
          })
        )
      )
    }

    /** The TTL to ask for: the caller's, raised to SACAR_SESSION_TTL_MIN when that is set. */
    const sessionTtl = (ttl: string) => {
      const ms = parseDuration(ttl)
      return sessionTtlMinMs !== undefined && ms !== undefined && ms > 0 && ms < sessionTtlMinMs
        ? goMillis(sessionTtlMinMs)
        : ttl
    }

    const createSession = (options: SessionOptions) => {
      const operation = `session create ${options.name}`
      const node = options.node ?? config.sessionNode
      return call({
        operation,
        method: "PUT",
        path: "/v1/session/create",
        body: JSON.stringify({
          Name: options.name,
          TTL: sessionTtl(options.ttl),
          Behavior: options.behavior,
          ...(options.lockDelay !== undefined ? { LockDelay: options.lockDelay } : {}),
          ...(node !== undefined ? { Node: node } : {})
        }),
        timeoutMs: requestTimeoutMs
      }).pipe(
        Effect.mapError((error) => unknownNode(error, node)),
        Effect.flatMap((res) => json(operation, res)),
        Effect.flatMap((body) => {
          const id = (body as { readonly ID?: unknown } | null)?.ID
          return typeof id === "string" && id !== ""
            ? Effect.succeed(id)
            : Effect.fail(unavailable(operation, "answer has no session ID"))
        })
      )
    }

    const renewSession = (id: string) => {
      const operation = `session renew ${id}`
      return call({
        operation,
        method: "PUT",
        path: `/v1/session/renew/${encodeURIComponent(id)}`,
        timeoutMs: requestTimeoutMs
      }, [404]).pipe(
        Effect.flatMap((res) =>
          res.status === 404
            ? Effect.succeed(undefined)
            : Effect.map(json(operation, res), (body) => {
              const ttl = (Array.isArray(body) ? body[0] as { readonly TTL?: unknown } | undefined : undefined)?.TTL
              return typeof ttl === "string" ? ttl : ""
            })
        )
      )
    }

    const destroySession = (id: string) =>
      call({
        operation: `session destroy ${id}`,
        method: "PUT",
        path: `/v1/session/destroy/${encodeURIComponent(id)}`,
        timeoutMs: requestTimeoutMs
      })
        .pipe(Effect.asVoid)

    const sessionInfo = (id: string) => {
      const operation = `session info ${id}`
      return call({
        operation,
        method: "GET",
        path: `/v1/session/info/${encodeURIComponent(id)}`,
        timeoutMs: requestTimeoutMs
      }, [404]).pipe(
        Effect.flatMap((res) => res.status === 404 ? Effect.succeed([]) : json(operation, res)),
        Effect.map((body): SessionInfo | undefined => {
          const raw = (Array.isArray(body) ? body[0] : undefined) as
            | { ID: string; Name?: string; Node?: string; TTL?: string; Behavior?: string; LockDelay?: number }
            | undefined
          if (raw === undefined) return undefined
          return {
            id: raw.ID,
            name: raw.Name ?? "",
            node: raw.Node ?? "",
            ttl: raw.TTL ?? "",
            behavior: raw.Behavior ?? "",
            lockDelayNs: raw.LockDelay ?? 0
          }
        })
      )
    }

    const leader = () => {
      const operation = "status leader"
      return call({ operation, method: "GET", path: "/v1/status/leader", timeoutMs: requestTimeoutMs }).pipe(
        Effect.flatMap((res) => json(operation, res)),
        Effect.map((body) => (typeof body === "string" ? body : ""))
      )
    }

    const agentNode = () => {
      const operation = "agent self"
      return call({ operation, method: "GET", path: "/v1/agent/self", timeoutMs: requestTimeoutMs }).pipe(
        Effect.flatMap((res) => json(operation, res)),
        Effect.map((body) => {
          const name = (body as { readonly Config?: { readonly NodeName?: unknown } } | null)?.Config?.NodeName
          return typeof name === "string" && name !== "" ? name : undefined
        }),
        Effect.catchIf((error) =>
          error._tag === "ConsulRequestError" && error.status === 404, () =>
          Effect.succeed(undefined))
      )
    }

    return Consul.of({
      address,
      get,
      list,
      keys,
      listKeys,
      put,
      delete: del,
      txn,
      createSession,
      ...(sessionTtlMinMs === undefined ? {} : { sessionTtlMinMs }),
      renewSession,
      destroySession,
      sessionInfo,
      leader,
      agentNode
    })
  })

/** The Consul service for an explicit configuration (tests, or an address from elsewhere). */
export const consulLayer = (config: ConsulConfig): Layer.Layer<Consul> => Layer.effect(Consul, makeConsul(config))
