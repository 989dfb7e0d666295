/**
 * A local stand-in for the Cloud Storage JSON API's media download
 * (`GET [/storage/v1|/download/storage/v1]/b/<bucket>/o/<object>?alt=media`), with
 * fault injection: failing the next requests, slow headers, slow bodies.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import type { Socket } from "node:net"

export interface GcsRequest {
  readonly method: string
  readonly path: string
  readonly status: number
}

export interface FakeGcs {
  /** `http://127.0.0.1:<port>`, what STORAGE_EMULATOR_HOST takes. */
  readonly url: string
  readonly requests: ReadonlyArray<GcsRequest>
  put(bucket: string, object: string, data: Uint8Array | string): void
  /** The next `count` media requests answer `status` (503 by default). */
  failNext(count: number, status?: number): void
  /** Wait before answering each request. */
  delayHeaders(ms: number): void
  /** Send bodies in `chunkBytes` pieces, `delayMs` apart. */
  throttle(options: { readonly chunkBytes: number; readonly delayMs: number } | undefined): void
  close(): Promise<void>
}

const MEDIA_PATH = /^(?:\/download)?(?:\/storage\/v1)?\/b\/([^/]+)\/o\/([^?]+)$/

export const startFakeGcs = async (): Promise<FakeGcs> => {
  const objects = new Map<string, Buffer>()
  const requests: Array<GcsRequest> = []
  let failures: Array<number> = []
  let headerDelay = 0
  let throttle: { chunkBytes: number; delayMs: number } | undefined
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t)
      f()
    }, ms)
    timers.add(t)
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost")
    const match = MEDIA_PATH.exec(url.pathname)
    const answer = (status: number, body?: string) => {
      requests.push({ method: req.method ?? "", path: url.pathname + url.search, status })
      res.writeHead(status, { "content-type": "application/json" })
      res.end(body ?? JSON.stringify({ error: { code: status, message: `status ${status}` } }))
    }
    const respond = () => {
      if (!match || url.searchParams.get("alt") !== "media" || req.method !== "GET") return answer(400)
      const injected = failures.shift()
      if (injected !== undefined) return answer(injected)
      const data = objects.get(`${decodeURIComponent(match[1]!)}/${decodeURIComponent(match[2]!)}`)
      if (!data) return answer(404)
      requests.push({ method: req.method, path: url.pathname + url.search, status: 200 })
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": data.length })
      if (!throttle) return void res.end(data)
      const { chunkBytes, delayMs } = throttle
      let offset = 0
      const next = () => {
        if (res.destroyed) return
        if (offset >= data.length) return void res.end()
        res.write(data.subarray(offset, offset + chunkBytes))
        offset += chunkBytes
        later(delayMs, next)
      }
      next()
    }
    if (headerDelay > 0) later(headerDelay, respond)
    else respond()
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    put: (bucket, object, data) => void objects.set(`${bucket}/${object}`, Buffer.from(data)),
    failNext: (count, status = 503) => {
      failures = [...failures, ...Array.from({ length: count }, () => status)]
    },
    delayHeaders: (ms) => {
      headerDelay = ms
    },
    throttle: (options) => {
      throttle = options
    },
    close: async () => {
      for (const t of timers) clearTimeout(t)
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
