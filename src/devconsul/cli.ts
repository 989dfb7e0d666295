// `sacar dev-consul [--listen HOST:PORT] [--acl-...]`: runs dev-consul in the
// foreground until SIGINT or SIGTERM.

import { parseArgs } from "node:util"
import type { AclOptions } from "./acl-endpoint.ts"
import { startDevConsul, tuneHeapForWatchers } from "./server.ts"

const USAGE = `Usage: sacar dev-consul [--listen 127.0.0.1:8500]
         [--acl-default-policy allow|deny] [--acl-initial-management-token TOKEN]
         [--acl-enable-key-list-policy]

Runs an in-memory server for the part of Consul's HTTP API that Sacar uses
(KV, blocking queries, sessions, txn, ACLs). For the demo and tests, never for
production: nothing is persisted. Without --acl-* options tokens are accepted
without checking.

Options:
  --listen HOST:PORT                    address to listen on (default 127.0.0.1:8500;
                                        port 0 picks one)
  --acl-default-policy allow|deny       turn ACLs on, as Consul's acl.default_policy
  --acl-initial-management-token TOKEN  the token that may do anything, as Consul's
                                        acl.tokens.initial_management (required with ACLs)
  --acl-enable-key-list-policy          recursive reads and key listings need "list",
                                        as Consul's acl.enable_key_list_policy
  --help                                show this help

Policies and tokens are created as with Consul: consul acl policy create -rules @file,
consul acl token create (PUT /v1/acl/policy, PUT /v1/acl/token).
`

export async function main(argv: string[]): Promise<number> {
  let values: {
    listen?: string
    help?: boolean
    "acl-default-policy"?: string
    "acl-initial-management-token"?: string
    "acl-enable-key-list-policy"?: boolean
  }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        listen: { type: "string" },
        help: { type: "boolean", short: "h" },
        "acl-default-policy": { type: "string" },
        "acl-initial-management-token": { type: "string" },
        "acl-enable-key-list-policy": { type: "boolean" }
      },
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

  const acl = aclOptions(values)
  if (typeof acl === "string") {
    process.stderr.write(`sacar dev-consul: ${acl}\n`)
    return 2
  }

  let server
  try {
    tuneHeapForWatchers()
    server = await startDevConsul({ ...listen, ...(acl !== undefined ? { acl } : {}) })
  } catch (e) {
    process.stderr.write(
      `sacar dev-consul: cannot listen on ${values.listen ?? "127.0.0.1:8500"}: ${(e as Error).message}\n`
    )
    return 1
  }
  process.stdout.write(
    `dev-consul listening on ${server.url}${
      acl === undefined ? "" : ` (ACLs on, default policy ${acl.defaultPolicy})`
    }\n`
  )

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

/** The ACL options the flags ask for; undefined without ACL flags, a message when they are wrong. */
function aclOptions(values: {
  "acl-default-policy"?: string
  "acl-initial-management-token"?: string
  "acl-enable-key-list-policy"?: boolean
}): AclOptions | undefined | string {
  const policy = values["acl-default-policy"]
  const token = values["acl-initial-management-token"]
  const keyList = values["acl-enable-key-list-policy"] === true
  if (policy === undefined && token === undefined && !keyList) return undefined
  if (policy !== undefined && policy !== "allow" && policy !== "deny")
    return `--acl-default-policy wants allow or deny, got ${JSON.stringify(policy)}`
  if (token === undefined || token.trim() === "") {
    return "--acl-initial-management-token is required with ACLs on: without it no policy or token can be created"
  }
  return {
    defaultPolicy: policy === "deny" ? "deny" : "allow",
    initialManagementToken: token,
    enableKeyListPolicy: keyList
  }
}
