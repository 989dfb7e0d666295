// A tiny HTTP server that plays Consul badly on purpose (errors, no blocking,
// indexes going backwards), recording every request, for the client-side rules.

import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { TestContext } from "node:test"

export interface StubRequest {
  readonly method: string
  readonly url: URL
  readonly headers: IncomingMessage["headers"]
  readonly at: number
}

export interface Stub {
  readonly addr: string
  readonly requests: Array<StubRequest>
  /** Sockets opened so far (keep-alive reuse keeps this low). */
  connections: number
  handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void
}

export async function startStub(t: TestContext, handler: Stub["handler"]): Promise<Stub> {
  const stub: Stub = { addr: "", requests: [], connections: 0, handler }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://stub")
    stub.requests.push({ method: req.method ?? "", url, headers: req.headers, at: Date.now() })
    stub.handler(req, res, url)
  })
  server.on("connection", () => stub.connections++)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  t.after(() =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  )
  const port = (server.address() as { port: number }).port
  return Object.assign(stub, { addr: `http://127.0.0.1:${port}` })
}

export function sendKv(
  res: ServerResponse,
  index: number,
  entries: ReadonlyArray<{ key: string; value: string }>
): void {
  const body = JSON.stringify(entries.map((e) => ({
    Key: e.key,
    Value: Buffer.from(e.value).toString("base64"),
    Flags: 0,
    CreateIndex: index,
    ModifyIndex: index,
    LockIndex: 0
  })))
  res.writeHead(entries.length === 0 ? 404 : 200, {
    "Content-Type": "application/json",
    "X-Consul-Index": String(index)
  })
  res.end(entries.length === 0 ? "" : body)
}
