/**
 * The demo's Consul: the embedded dev-consul, in this process on a free port, or the
 * one at CONSUL_HTTP_ADDR. On an external Consul the demo owns only its prefix, and
 * only if it says so: the prefix must be empty or hold the demo's own marker key
 * (left by an earlier run), so a prefix with anyone else's data is never cleared.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { nowIso } from "../common/time.ts"
import { consulConfigFromEnv } from "../consul/config.ts"
import type { ConsulConfig } from "../consul/config.ts"
import { Consul } from "../consul/consul.ts"
import type { ConsulError } from "../consul/consul.ts"
import { consulLayer } from "../consul/http.ts"
import { startDevConsul } from "../devconsul/server.ts"
import { type Keys, makeKeys } from "../spec/keys.ts"
import type { ConsulChoice } from "./options.ts"

export interface DemoConsul {
  /** http(s)://host:port as the children and the operator's commands should use it. */
  readonly address: string
  readonly embedded: boolean
  readonly keys: Keys
  /** Runs a Consul effect; a failure rejects with the error itself. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Consul>, signal?: AbortSignal) => Promise<A>
  close(): Promise<void>
}

/** `<prefix>/_demo`: names starting with `_` are reserved, so no app can be called that. */
export const demoMarkerKey = (keys: Keys): string => `${keys.root}_demo`

/** The prefix holds data the demo did not write. */
export class PrefixRefused extends Error {}

/** The Consul at CONSUL_HTTP_ADDR does not answer; the message says which and what to do. */
export class ConsulGone extends Error {}

/**
 * The sentence for a CONSUL_HTTP_ADDR that does not answer. The demo tells people to
 * export that variable, so the usual cause is a shell still pointing at an earlier
 * demo's embedded Consul, which stopped with it.
 */
export const consulGoneMessage = (address: string, reason: string, earlierDemoAddress: string | undefined): string => {
  const local = /^https?:\/\/(127\.|localhost|\[::1\])/.test(address)
  const earlier = earlierDemoAddress === address
    ? "it is an earlier demo's Consul (the one the last run in this folder started), which stopped with it"
    : local
    ? "it looks like an earlier demo's (the demo prints `export CONSUL_HTTP_ADDR=...`), which stopped with it"
    : "is it running, and is the address right?"
  return `cannot reach the Consul at ${address} (CONSUL_HTTP_ADDR): ${reason}; ${earlier}. ` +
    "To start afresh with the demo's own Consul: `unset CONSUL_HTTP_ADDR SACAR_PREFIX; npx sacar demo`"
}

const REQUEST_TIMEOUT_MS = 10_000

export async function openConsul(
  choice: ConsulChoice,
  env: NodeJS.ProcessEnv,
  dir: string,
  earlierDemoAddress?: string
): Promise<DemoConsul> {
  const keys = makeKeys(choice.prefix)
  let config: ConsulConfig
  let closeServer = async () => {}
  if (choice.kind === "embedded") {
    const server = await startDevConsul({ host: "127.0.0.1", port: 0 })
    closeServer = () => server.close()
    config = { address: server.url, tls: { verify: true } }
  } else {
    config = await Effect.runPromise(consulConfigFromEnv(env))
  }
  const runtime = ManagedRuntime.make(consulLayer({ ...config, requestTimeoutMs: REQUEST_TIMEOUT_MS }))
  const demo: DemoConsul = {
    address: config.address,
    embedded: choice.kind === "embedded",
    keys,
    run: (effect, signal) => runtime.runPromise(effect, signal === undefined ? undefined : { signal }),
    close: async () => {
      await runtime.dispose()
      await closeServer()
    }
  }
  try {
    if (choice.kind === "external") await demo.run(claimPrefix(keys, dir))
    return demo
  } catch (cause) {
    await demo.close()
    if (cause instanceof Error && "_tag" in cause && cause._tag === "ConsulUnavailable")
      throw new ConsulGone(consulGoneMessage(config.address, cause.message, earlierDemoAddress))
    throw cause
  }
}

/** Empties the prefix if it is the demo's (or already empty) and marks it as the demo's. */
export const claimPrefix = (keys: Keys, dir: string): Effect.Effect<void, ConsulError | PrefixRefused, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const marker = demoMarkerKey(keys)
    const present = yield* consul.keys(keys.root)
    if (present.length > 0 && !present.includes(marker)) {
      return yield* Effect.fail(
        new PrefixRefused(
          `${keys.root} on ${consul.address} holds data sacar demo did not write (${present.length} key${
            present.length === 1 ? "" : "s"
          }); ` +
            "set SACAR_PREFIX to an empty prefix for the demo"
        )
      )
    }
    if (present.length > 0) yield* consul.delete(keys.root, { recurse: true })
    yield* consul.put(marker, JSON.stringify({ by: "sacar demo", dir, at: yield* nowIso }))
  })
