// PUT /v1/catalog/register and /v1/catalog/deregister for nodes and node checks
// (agent/catalog_endpoint.go and agent/consul/catalog_endpoint.go): what a Consul agent
// does for its own node, and what tests and the demo do for the made-up nodes they run
// reconcilers as, so a session on such a node is accepted by a real Consul too.
// Services are not kept. Deregistering a node or a check invalidates the sessions bound
// to it, as Consul's state store does.

import type { IncomingMessage, ServerResponse } from "node:http"
import { enforce } from "./acl-endpoint.ts"
import type { RequestAccess } from "./acl-endpoint.ts"
import type { Catalog, CheckStatus } from "./catalog.ts"
import { HttpError, methodNotAllowed, readBody, sendJson } from "./http.ts"
import { field } from "./json.ts"
import type { Store } from "./store.ts"

const MAX_BODY = 512 * 1024

export async function handleCatalog(
  catalog: Catalog,
  store: Store,
  access: RequestAccess,
  req: IncomingMessage,
  res: ServerResponse,
  rest: string
): Promise<void> {
  if (rest !== "register" && rest !== "deregister") throw new HttpError(404, "404 page not found")
  if (req.method !== "PUT") throw methodNotAllowed(req.method)
  const body = decode(await readBody(req, MAX_BODY))
  const node = text(body, "Node")
  if (node === "") throw new HttpError(500, "Must provide node")
  enforce(access.authz, "node", node, "write")

  if (rest === "register") {
    const address = text(body, "Address")
    if (address === "" && field(body, "SkipNodeUpdate") !== true) {
      throw new HttpError(500, "Must provide address if SkipNodeUpdate is not set")
    }
    const one = field(body, "Check")
    const many = field(body, "Checks")
    const checks = [...(isObject(one) ? [one] : []), ...(Array.isArray(many) ? many.filter(isObject) : [])]
    catalog.register(node, address, checks.map((c) => [checkId(c, node), status(c)] as const))
    return sendJson(res, 200, true)
  }

  const check = text(body, "CheckID")
  const sessions = store.listSessions().filter((s) => s.node.toLowerCase() === node.toLowerCase())
  if (check === "") {
    catalog.deregisterNode(node)
    for (const s of sessions) store.destroySession(s.id)
  } else {
    catalog.deregisterCheck(node, check)
    for (const s of sessions) if (s.nodeChecks.includes(check)) store.destroySession(s.id)
  }
  return sendJson(res, 200, true)
}

function decode(body: Buffer): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString("utf8") || "null")
  } catch (e) {
    throw new HttpError(400, `Request decode failed: ${(e as Error).message}`)
  }
  if (!isObject(parsed)) throw new HttpError(400, "Request decode failed: body is not a JSON object")
  return parsed
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v)
}

function text(obj: Record<string, unknown>, name: string): string {
  const v = field(obj, name)
  if (v === undefined || v === null) return ""
  if (typeof v !== "string") throw new HttpError(400, `Request decode failed: ${name} must be a string`)
  return v
}

function checkId(check: Record<string, unknown>, node: string): string {
  const owner = text(check, "Node")
  if (owner !== "" && owner.toLowerCase() !== node.toLowerCase()) throw new HttpError(500, "Node mismatch")
  const id = text(check, "CheckID") || text(check, "Name")
  if (id === "") throw new HttpError(500, "Missing check ID")
  return id
}

/** A check registered without a status starts critical, as in Consul's state store. */
function status(check: Record<string, unknown>): CheckStatus {
  const s = text(check, "Status")
  if (s === "") return "critical"
  if (s !== "passing" && s !== "warning" && s !== "critical") throw new HttpError(500, `Invalid check status: ${s}`)
  return s
}
