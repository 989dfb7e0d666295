// `sacar dev-consul [--listen HOST:PORT]`: runs dev-consul in the foreground until
// SIGINT or SIGTERM.

import { parseArgs } from "node:util"
import { startDevConsul, tuneHeapForWatchers } from "./server.ts"

const USAGE = `Usage: sacar dev-consul [--listen 127.0.0.1:8500]

Runs an in-memory server for the part of Consul's HTTP API that Sacar uses
(KV, blocking queries, sessions, txn). For the demo and tests, never for production:
nothing is persisted and tokens are accepted without checking.

Options:
  --listen HOST:PORT   address to listen on (default 127.0.0.1:8500; port 0 picks one)
  --help               show this help
`

export async function main(argv: string[]): Promise<number> {
  let values: { listen?: string; help?: boolean }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { listen: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false
    }))
  } catch (e) {
    process.stderr.write(`sacar dev-consul: ${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }
  const listen = parseListen(values.listen ?? "127.0.0.1:8500")
  if (listen === undefined) {
    process.stderr.write(
      `sacar dev-consul: --listen wants HOST:PORT (e.g. 127.0.0.1:8500), got ${JSON.stringify(values.listen)}\n`
    )
    return 2
  }

  let server
  try {
    tuneHeapForWatchers()
    server = await startDevConsul(listen)
  } catch (e) {
    process.stderr.write(
      `sacar dev-consul: cannot listen on ${values.listen ?? "127.0.0.1:8500"}: ${(e as Error).message}\n`
    )
    return 1
  }
  process.stdout.write(`dev-consul listening on ${server.url}\n`)

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (s: NodeJS.Signals) => {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
      resolve(s)
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
  })
  process.stdout.write(`dev-consul: ${signal}, shutting down\n`)
  await server.close()
  return 0
}

function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const host = m[1] ?? m[2] ?? ""
  return { host: host === "" ? "127.0.0.1" : host, port }
}
