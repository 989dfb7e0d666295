// /v1/status/* and /v1/agent/self: enough for clients that check "is there a leader"
// and "which node am I on" before starting.

import type { IncomingMessage, ServerResponse } from "node:http"
import { DATACENTER, HttpError, methodNotAllowed, sendJson } from "./http.ts"

/** The version dev-consul reports; the API surface it copies is Consul 1.14+ (txn limit 128). */
export const REPORTED_VERSION = "1.21.0"
const SERVER_RPC_ADDR = "127.0.0.1:8300"

export function handleStatus(req: IncomingMessage, res: ServerResponse, rest: string): void {
  if (req.method !== "GET") throw methodNotAllowed(req.method)
  if (rest === "leader") return sendJson(res, 200, SERVER_RPC_ADDR)
  if (rest === "peers") return sendJson(res, 200, [SERVER_RPC_ADDR])
  throw new HttpError(404, "404 page not found")
}

export function handleAgent(
  req: IncomingMessage,
  res: ServerResponse,
  rest: string,
  node: { name: string; id: string }
): void {
  if (req.method !== "GET") throw methodNotAllowed(req.method)
  const member = {
    Name: node.name,
    Addr: "127.0.0.1",
    Port: 8301,
    Tags: { dc: DATACENTER, role: "consul", port: "8300", build: REPORTED_VERSION, vsn: "2" },
    Status: 1,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4
  }
  if (rest === "self") {
    return sendJson(res, 200, {
      Config: {
        Datacenter: DATACENTER,
        PrimaryDatacenter: DATACENTER,
        NodeName: node.name,
        NodeID: node.id,
        Revision: "dev-consul",
        Server: true,
        Version: REPORTED_VERSION
      },
      DebugConfig: {},
      Coord: null,
      Member: member,
      Meta: { "dev-consul": "true" },
      Stats: {}
    })
  }
  if (rest === "members") return sendJson(res, 200, [member])
  throw new HttpError(404, "404 page not found")
}
