// /v1/session/{create,destroy,renew,info,list,node}, following agent/session_endpoint.go
// and the server-side checks in agent/consul/session_endpoint.go.

import type { IncomingMessage, ServerResponse } from "node:http"
import { enforce } from "./acl-endpoint.ts"
import type { RequestAccess } from "./acl-endpoint.ts"
import { blockingQuery, parseBlocking } from "./blocking.ts"
import { formatGoDuration, parseGoDuration } from "./duration.ts"
import { HttpError, methodNotAllowed, queryMeta, readBody, readOptions, sendJson } from "./http.ts"
import { field } from "./json.ts"
import type { Session, SessionBehavior, Store } from "./store.ts"

const DEFAULT_LOCK_DELAY_NS = 15e9
const TTL_MIN_NS = 10e9
const TTL_MAX_NS = 24 * 3600e9
/** LockDelay numbers below this are seconds, not nanoseconds (Consul's FixupLockDelay). */
const LOCK_DELAY_SECONDS_BELOW = 1000
const MAX_BODY = 512 * 1024

export function sessionJson(s: Session): Record<string, unknown> {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: s.lockDelayNs,
    Behavior: s.behavior,
    TTL: s.ttl,
    NodeChecks: s.nodeChecks,
    ServiceChecks: s.serviceChecks,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex
  }
}

export async function handleSession(
  store: Store,
  access: RequestAccess,
  nodeName: string,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rest: string
): Promise<void> {
  const slash = rest.indexOf("/")
  const verb = slash < 0 ? rest : rest.slice(0, slash)
  const arg = slash < 0 ? "" : rest.slice(slash + 1)
  const consistency = readOptions(url)
  const blocking = parseBlocking(url)
  /** Destroy and renew need write on the session's node. */
  const writable = (id: string) => {
    const s = store.getSession(id)
    if (s !== undefined) enforce(access.authz, "session", s.node, "write")
  }
  const expect = (method: string) => {
    if (req.method !== method) throw methodNotAllowed(req.method)
  }

  const read = async (select: () => Session[]) => {
    expect("GET")
    const result = await blockingQuery(
      store,
      res,
      blocking,
      () => ({ index: store.sessionsIndex, sessions: select() }),
      () => ({ kind: "sessions" })
    )
    if (result === undefined) return
    // Sessions the token may not read (by their node) are filtered out, as Consul does.
    const visible = result.sessions.filter((s) => access.authz.allowed("session", s.node, "read"))
    sendJson(res, 200, visible.map(sessionJson), queryMeta(result.index, consistency))
  }

  switch (verb) {
    case "create": {
      expect("PUT")
      const body = await readBody(req, MAX_BODY)
      const spec = sessionSpec(body, nodeName)
      enforce(access.authz, "session", spec.node, "write")
      access.checkSessionNode(spec.node, spec.nodeChecks)
      const session = store.createSession(spec)
      return sendJson(res, 200, { ID: session.id })
    }
    case "destroy":
      expect("PUT")
      requireId(arg)
      writable(arg)
      store.destroySession(arg)
      return sendJson(res, 200, true)
    case "renew": {
      expect("PUT")
      requireId(arg)
      writable(arg)
      const session = store.renewSession(arg)
      if (session === undefined) throw new HttpError(404, `Session id '${arg}' not found`)
      return sendJson(res, 200, [sessionJson(session)])
    }
    case "info":
      requireId(arg)
      return read(() => {
        const s = store.getSession(arg)
        return s === undefined ? [] : [s]
      })
    case "list":
      return read(() => store.listSessions())
    case "node":
      if (arg === "") throw new HttpError(400, "Missing node name")
      return read(() => store.listSessions().filter((s) => s.node === arg))
    default:
      throw new HttpError(404, "404 page not found")
  }
}

function requireId(id: string): void {
  if (id === "") throw new HttpError(400, "Missing session")
}

function sessionSpec(body: Buffer, nodeName: string): Omit<Session, "id" | "createIndex" | "modifyIndex"> {
  let raw: Record<string, unknown> = {}
  if (body.length > 0) {
    let parsed: unknown
    try {
      parsed = JSON.parse(body.toString("utf8"))
    } catch (e) {
      throw new HttpError(400, `Request decode failed: ${(e as Error).message}`)
    }
    if (parsed !== null) {
      if (typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new HttpError(400, "Request decode failed: body is not a JSON object")
      }
      raw = parsed as Record<string, unknown>
    }
  }

  const str = (name: string): string => {
    const v = field(raw, name)
    if (v === undefined || v === null) return ""
    if (typeof v !== "string") throw new HttpError(400, `Request decode failed: ${name} must be a string`)
    return v
  }

  const behaviorText = str("Behavior")
  if (behaviorText !== "" && behaviorText !== "release" && behaviorText !== "delete") {
    throw new HttpError(500, `Invalid Behavior setting '${behaviorText}'`)
  }
  const behavior: SessionBehavior = behaviorText === "delete" ? "delete" : "release"

  const ttl = str("TTL")
  let ttlNs = 0
  if (ttl !== "") {
    const parsed = parseGoDuration(ttl)
    if (parsed === undefined) throw new HttpError(500, `Session TTL '${ttl}' invalid: time: invalid duration "${ttl}"`)
    ttlNs = parsed
    if (ttlNs !== 0 && (ttlNs < TTL_MIN_NS || ttlNs > TTL_MAX_NS)) {
      throw new HttpError(
        500,
        `Invalid Session TTL '${ttlNs}', must be between [${formatGoDuration(TTL_MIN_NS)}=${
          formatGoDuration(TTL_MAX_NS)
        }]`
      )
    }
  }

  const checks = field(raw, "NodeChecks") ?? field(raw, "Checks")
  const serviceChecks = field(raw, "ServiceChecks")
  return {
    name: str("Name"),
    // Any node name unless RequireNodeRegistration is on: Consul requires it to be in
    // the catalog (see catalog.ts).
    node: str("Node") || nodeName,
    lockDelayNs: lockDelay(field(raw, "LockDelay")),
    behavior,
    ttl,
    ttlMs: ttlNs / 1e6,
    nodeChecks: Array.isArray(checks) ? checks.map(String) : ["serfHealth"],
    serviceChecks: Array.isArray(serviceChecks) ? serviceChecks : null
  }
}

function lockDelay(v: unknown): number {
  let ns: number
  if (v === undefined || v === null) return DEFAULT_LOCK_DELAY_NS
  if (typeof v === "string") {
    const parsed = parseGoDuration(v)
    if (parsed === undefined) throw new HttpError(400, `Request decode failed: time: invalid duration "${v}"`)
    ns = parsed
  } else if (typeof v === "number") {
    ns = Math.trunc(v)
  } else {
    throw new HttpError(400, "Request decode failed: LockDelay must be a duration string or nanoseconds")
  }
  return ns < LOCK_DELAY_SECONDS_BELOW ? ns * 1e9 : ns
}
