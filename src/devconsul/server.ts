// dev-consul: an in-memory server for the part of Consul's HTTP API that Sacar uses
// (KV, blocking queries, sessions, txn, status, ACLs). For the demo and tests, never for
// production: there is no persistence, one datacenter, one agent. The paths only a
// production Consul takes (ACLs, faults, late session expiry, tombstone reaping,
// refused keys) are off unless asked for: see acl-endpoint.ts and production.ts.

import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { hostname } from "node:os"
import { setFlagsFromString } from "node:v8"
import { Acl } from "./acl-endpoint.ts"
import type { AclOptions } from "./acl-endpoint.ts"
import { handleAgent, handleStatus } from "./agent-endpoint.ts"
import { handleCatalog } from "./catalog-endpoint.ts"
import { Catalog } from "./catalog.ts"
import { HttpError, sendText } from "./http.ts"
import { handleKv } from "./kv-endpoint.ts"
import { Production } from "./production.ts"
import type { ProductionSettings } from "./production.ts"
import { handleSession } from "./session-endpoint.ts"
import { Store } from "./store.ts"
import { handleTxn } from "./txn-endpoint.ts"

export interface DevConsulOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 8500; 0 picks a free port. */
  readonly port?: number
  /** Node name sessions default to and /v1/agent/self reports; default the host name. */
  readonly nodeName?: string
  /** ACLs enforced as Consul's acl stanza configures them; undefined: no ACLs (the default). */
  readonly acl?: AclOptions
  /** Production paths on from the start (they can also be switched at run time). */
  readonly production?: ProductionSettings
}

export interface DevConsul {
  /** http://host:port, without a trailing slash. */
  readonly url: string
  readonly port: number
  /** The state, for benchmarks that count waiters; tests should talk HTTP. */
  readonly store: Store
  /** The node name sessions default to. */
  readonly nodeName: string
  close(): Promise<void>
}

/**
 * One write wakes every watcher of a prefix at once, and each response allocates a
 * little; with V8's default young generation, a thousand of them trigger several
 * scavenges in the middle of the fan-out. A larger young generation (measured with
 * bench/consul-watch.ts: p99 wake-up at 1000 watchers about 53 ms -> 44 ms) keeps the
 * fan-out free of them. For a process whose main job is serving dev-consul.
 */
export function tuneHeapForWatchers(): void {
  setFlagsFromString("--max-semi-space-size=32")
}

export async function startDevConsul(options: DevConsulOptions = {}): Promise<DevConsul> {
  const host = options.host ?? "127.0.0.1"
  const store = new Store()
  const node = { name: options.nodeName ?? hostname(), id: randomUUID() }
  // The agent's own node is in the catalog with its serfHealth check, as a Consul agent's is.
  const catalog = new Catalog()
  catalog.register(node.name, "127.0.0.1", [["serfHealth", "passing"]])
  const context: Context = {
    store,
    node,
    catalog,
    acl: new Acl(options.acl),
    production: new Production(store, catalog, options.production)
  }

  const server = createServer(
    // Blocking queries may legitimately hold a request for 10 minutes plus jitter.
    { requestTimeout: 0, keepAliveTimeout: 65_000 },
    (req, res) => {
      route(context, req, res).catch((err: unknown) => fail(res, err))
    }
  )
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    // A large backlog so a thousand watchers connecting at once are not dropped.
    server.listen({ host, port: options.port ?? 8500, backlog: 4096 }, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(":") ? `[${host}]` : host

  return {
    url: `http://${urlHost}:${port}`,
    port,
    store,
    nodeName: node.name,
    close: () =>
      new Promise<void>((resolve) => {
        store.close()
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

interface Context {
  readonly store: Store
  readonly node: { readonly name: string; readonly id: string }
  readonly catalog: Catalog
  readonly acl: Acl
  readonly production: Production
}

async function route(context: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { store, node, catalog, acl, production } = context
  const url = new URL(req.url ?? "/", "http://dev-consul")
  let path: string
  try {
    path = decodeURIComponent(url.pathname)
  } catch {
    throw new HttpError(400, `invalid URL escape in ${JSON.stringify(url.pathname)}`)
  }
  // Go's ServeMux redirects unclean paths; a KV key with a leading "/" lands here,
  // which is how a real Consul answers it too.
  const clean = cleanPath(path)
  if (clean !== path) {
    res.writeHead(301, { Location: clean + url.search, "Content-Length": 0 })
    res.end()
    return
  }
  if (path.startsWith("/v1/dev-consul/")) return production.handle(req, res, path.slice("/v1/dev-consul/".length))
  if (path.startsWith("/v1/status/")) return handleStatus(req, res, path.slice("/v1/status/".length))
  const authz = acl.authorize(req, url)
  if (path.startsWith("/v1/acl/")) return acl.handle(req, res, url, path.slice("/v1/acl/".length), authz)
  const access = {
    authz,
    keyListPolicy: acl.keyListPolicy,
    checkKey: (key: string) => production.checkKey(key),
    checkSessionNode: (name: string, checks: ReadonlyArray<string>) => production.checkSessionNode(name, checks)
  }
  if (path.startsWith("/v1/kv/") || path === "/v1/kv") {
    const fault = production.maybeFault(res)
    if (fault !== undefined) return fault
    return handleKv(store, access, req, res, url, path.slice("/v1/kv/".length))
  }
  if (path.startsWith("/v1/session/")) {
    const fault = production.maybeFault(res)
    if (fault !== undefined) return fault
    return handleSession(store, access, node.name, req, res, url, path.slice("/v1/session/".length))
  }
  if (path === "/v1/txn") {
    const fault = production.maybeFault(res)
    if (fault !== undefined) return fault
    return handleTxn(store, access, req, res, url)
  }
  if (path.startsWith("/v1/catalog/")) {
    return handleCatalog(catalog, store, access, req, res, path.slice("/v1/catalog/".length))
  }
  if (path.startsWith("/v1/agent/")) return handleAgent(req, res, path.slice("/v1/agent/".length), node)
  throw new HttpError(404, "404 page not found")
}

function fail(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (err instanceof HttpError) return sendText(res, err.status, err.message)
  sendText(res, 500, err instanceof Error ? err.message : String(err))
}

/** Go's path.Clean, keeping a trailing slash as net/http's cleanPath does. */
function cleanPath(p: string): string {
  if (p.startsWith("/") && !p.includes("//") && !p.includes("/.")) return p
  if (p === "") return "/"
  const out: string[] = []
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue
    if (seg === "..") out.pop()
    else out.push(seg)
  }
  let cleaned = "/" + out.join("/")
  if (p.endsWith("/") && cleaned !== "/") cleaned += "/"
  return cleaned
}
