// fetchBody over node:http: redirects followed (credentials kept to their origin),
// statuses refused, the body's bytes as served.

import assert from "node:assert/strict"
import { createServer } from "node:http"
import type { IncomingHttpHeaders, Server } from "node:http"
import { text } from "node:stream/consumers"
import { test } from "node:test"
import { fetchBody } from "../../src/artifacts/http.ts"

const serve = async (
  handle: (path: string, headers: IncomingHttpHeaders) => { status: number; location?: string; body?: string }
): Promise<{ url: string; server: Server }> => {
  const server = createServer((req, res) => {
    const { status, location, body } = handle(req.url ?? "/", req.headers)
    res.writeHead(status, location === undefined ? {} : { location })
    res.end(body ?? "")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server }
}

test("follows redirects, keeps credentials to their origin, refuses a failing status", async (t) => {
  const seen: Array<string> = []
  const other = await serve((path, headers) => {
    seen.push(`other ${path} ${headers.authorization ?? "-"}`)
    return { status: 200, body: "from the other origin" }
  })
  t.after(() => other.server.close())
  const origin = await serve((path, headers) => {
    seen.push(`origin ${path} ${headers.authorization ?? "-"}`)
    if (path === "/a.tgz") return { status: 302, location: "/b.tgz" }
    if (path === "/b.tgz") return { status: 200, body: "tarball bytes" }
    if (path === "/away.tgz") return { status: 307, location: `${other.url}/c.tgz` }
    return { status: 404 }
  })
  t.after(() => origin.server.close())
  const signal = new AbortController().signal

  assert.equal(
    await text(await fetchBody(`${origin.url}/a.tgz`, signal, { authorization: "Bearer x" })),
    "tarball bytes"
  )
  assert.equal(
    await text(await fetchBody(`${origin.url}/away.tgz`, signal, { authorization: "Bearer x" })),
    "from the other origin"
  )
  assert.deepEqual(seen, [
    "origin /a.tgz Bearer x",
    "origin /b.tgz Bearer x",
    "origin /away.tgz Bearer x",
    "other /c.tgz -"
  ])
  await assert.rejects(fetchBody(`${origin.url}/missing.tgz`, signal), /404/)
})
