// The paths only a production Consul takes, switchable at run time so tests can turn
// them on around the moment they care about (all off by default):
// - faults: a share of KV, txn and session requests answered 429 (Consul 1.15+'s rate
//   limiter, or an agent past http_max_conns_per_client) or 503 (no leader), or left
//   unanswered ("hang", as requests wait out a leader election);
// - sessions invalidated at twice their TTL after the last renew, as Consul's timer
//   runs (SessionTTLMultiplier);
// - keys refused as Consul 1.21.6+ refuses them (400);
// and two events: a node failing its health (its sessions are invalidated, as when its
// agent fails or restarts) and tombstones reaped (prefix indexes may go backwards).
//
// - sessions refused on nodes the catalog does not know, with Consul's texts;
//
//   PUT /v1/dev-consul/settings  {"FaultStatus":429,"FaultShare":0.3,"SessionTTLMultiplier":2,"RefuseKeys":true,
//                                 "RequireNodeRegistration":true}
//   PUT /v1/dev-consul/node/<node>/fail
//   PUT /v1/dev-consul/tombstones/reap

import type { IncomingMessage, ServerResponse } from "node:http"
import { keyRefusal } from "../consul/key-rules.ts"
import type { Catalog } from "./catalog.ts"
import { HttpError, methodNotAllowed, readBody, sendJson } from "./http.ts"
import { field } from "./json.ts"
import type { Store } from "./store.ts"

export type FaultStatus = 429 | 503 | "hang"

export interface ProductionSettings {
  /** 429 or 503: what a faulted request is answered; "hang": it is never answered. */
  readonly faultStatus?: FaultStatus
  /** 0..1, the share of requests answered `faultStatus`; 0 turns faults off. */
  readonly faultShare?: number
  /** 1 (dev-consul's default: the earliest a server may expire) or 2 (Consul's). */
  readonly sessionTtlMultiplier?: number
  /** Refuse keys Consul 1.21.6+ refuses. */
  readonly refuseKeys?: boolean
  /** Refuse sessions on nodes (or bound to checks) the catalog does not have, as Consul does. */
  readonly requireNodeRegistration?: boolean
}

export class Production {
  faultStatus: FaultStatus = 429
  faultShare = 0
  refuseKeys = false
  requireNodeRegistration = false
  /** Requests answered with a fault so far; tests check the faults did happen. */
  faulted = 0
  readonly #store: Store
  readonly #catalog: Catalog

  constructor(store: Store, catalog: Catalog, settings: ProductionSettings = {}) {
    this.#store = store
    this.#catalog = catalog
    this.apply(settings)
  }

  apply(settings: ProductionSettings): void {
    if (settings.faultStatus !== undefined) this.faultStatus = settings.faultStatus
    if (settings.faultShare !== undefined) this.faultShare = settings.faultShare
    if (settings.refuseKeys !== undefined) this.refuseKeys = settings.refuseKeys
    if (settings.requireNodeRegistration !== undefined) this.requireNodeRegistration = settings.requireNodeRegistration
    if (settings.sessionTtlMultiplier !== undefined) this.#store.sessionTtlMultiplier = settings.sessionTtlMultiplier
  }

  /**
   * For this share of requests: throws the configured status, or (hang) returns a
   * promise that settles only when the client goes away.
   */
  maybeFault(res: ServerResponse): Promise<never> | undefined {
    if (this.faultShare <= 0 || Math.random() >= this.faultShare) return undefined
    this.faulted++
    if (this.faultStatus === "hang") return new Promise<never>(() => void res)
    throw this.faultStatus === 429
      ? new HttpError(429, "rate limit exceeded, try again later")
      : new HttpError(503, "No cluster leader")
  }

  /**
   * Consul 1.21.6+ (hashicorp/consul#22931) answers 400 for a key with a `../` path
   * traversal, a leading `/`, or leading or trailing white space. The status and the
   * cases are Consul's; the wording is dev-consul's (1.21.6's text is not in the
   * sources we could read; see docs/dev-consul.md).
   */
  checkKey(key: string): void {
    if (!this.refuseKeys) return
    const why = keyRefusal(key)
    if (why !== undefined) throw new HttpError(400, `invalid key name ${JSON.stringify(key)}: ${why}`)
  }

  /**
   * Consul refuses a session on a node its catalog does not have ("Missing node
   * registration", a 500 from the state store), or bound to a check the node lacks or
   * that is critical. Off by default: one dev-consul stands in for every machine.
   */
  checkSessionNode(node: string, checks: ReadonlyArray<string>): void {
    if (!this.requireNodeRegistration) return
    const refusal = this.#catalog.sessionRefusal(node, checks)
    if (refusal !== undefined) throw new HttpError(500, refusal)
  }

  async handle(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    if (req.method !== "PUT") throw methodNotAllowed(req.method)
    if (rest === "settings") {
      const body = JSON.parse((await readBody(req, 64 * 1024)).toString("utf8") || "{}") as Record<string, unknown>
      const status = field(body, "FaultStatus")
      if (status !== undefined && status !== 429 && status !== 503 && status !== "hang")
        throw new HttpError(400, "FaultStatus is 429, 503 or \"hang\"")
      const share = field(body, "FaultShare")
      if (share !== undefined && (typeof share !== "number" || share < 0 || share > 1))
        throw new HttpError(400, "FaultShare is a number from 0 to 1")
      const multiplier = field(body, "SessionTTLMultiplier")
      if (multiplier !== undefined && (typeof multiplier !== "number" || multiplier < 1))
        throw new HttpError(400, "SessionTTLMultiplier is a number, at least 1")
      const refuse = field(body, "RefuseKeys")
      const registration = field(body, "RequireNodeRegistration")
      this.apply({
        ...(status !== undefined ? { faultStatus: status } : {}),
        ...(share !== undefined ? { faultShare: share } : {}),
        ...(multiplier !== undefined ? { sessionTtlMultiplier: multiplier } : {}),
        ...(refuse !== undefined ? { refuseKeys: refuse === true } : {}),
        ...(registration !== undefined ? { requireNodeRegistration: registration === true } : {})
      })
      return sendJson(res, 200, {
        FaultStatus: this.faultStatus,
        FaultShare: this.faultShare,
        Faulted: this.faulted,
        SessionTTLMultiplier: this.#store.sessionTtlMultiplier,
        RefuseKeys: this.refuseKeys,
        RequireNodeRegistration: this.requireNodeRegistration
      })
    }
    const node = /^node\/([^/]+)\/fail$/.exec(rest)
    if (node !== null) return sendJson(res, 200, { Invalidated: this.#store.failNode(node[1]!) })
    if (rest === "tombstones/reap") return sendJson(res, 200, { Reaped: this.#store.reapTombstones() })
    throw new HttpError(404, "404 page not found")
  }
}
