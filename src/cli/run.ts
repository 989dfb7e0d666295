/**
 * The runtime of the operator commands: Consul from the CONSUL_* variables with a
 * short request timeout (an unreachable Consul is reported within seconds, not
 * minutes), the KV prefix from SACAR_PREFIX, and one mapping from failures to exit
 * codes: usage and configuration 2, everything else 1, each as one line.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { userInfo } from "node:os"
import { optionalSetting, prefixSetting } from "../common/settings.ts"
import { type ConsulConfigError, consulConfigFromEnv } from "../consul/config.ts"
import type { Consul, ConsulError } from "../consul/consul.ts"
import { consulLayer } from "../consul/http.ts"
import { InvalidRequest, RequestRefused } from "../operator/errors.ts"
import { type Keys, makeKeys } from "../spec/keys.ts"
import { UsageError } from "./args.ts"

const CLI_TIMEOUT_MS = 5_000

export const cliKeys = (): Keys => makeKeys(prefixSetting(process.env))

/** Who is asking, for `requestedBy` and `by` fields. */
export const operatorName = (): string => {
  const fromEnv = optionalSetting(process.env, "SACAR_USER") ?? optionalSetting(process.env, "USER")
  if (fromEnv !== undefined) return fromEnv
  try {
    return userInfo().username
  } catch {
    return "unknown"
  }
}

type CliError = ConsulError | ConsulConfigError | RequestRefused | InvalidRequest | UsageError

export const runWithConsul = async (
  command: string,
  program: Effect.Effect<number, CliError, Consul>
): Promise<number> => {
  const layer = Layer.unwrap(
    Effect.map(consulConfigFromEnv(), (config) => consulLayer({ ...config, requestTimeoutMs: CLI_TIMEOUT_MS }))
  )
  const exit = await Effect.runPromiseExit(
    program.pipe(
      Effect.provide(layer),
      Effect.catch((error: CliError | ConsulConfigError): Effect.Effect<number> => {
        const line = (text: string, code: number) =>
          Effect.sync(() => {
            process.stderr.write(`sacar ${command}: ${text}\n`)
            return code
          })
        if (error instanceof UsageError) return line(`${error.message}\nRun \`sacar ${command} --help\` for usage.`, 2)
        switch (error._tag) {
          case "ConsulConfigError":
            return line(error.message, 2)
          case "ConsulUnavailable":
            return line(`cannot reach Consul at ${error.address}: ${error.message} (set CONSUL_HTTP_ADDR)`, 1)
          case "ConsulRequestError":
            return line(`Consul refused ${error.operation}: ${error.status} ${error.message}`, 1)
          case "RequestRefused":
            return line(error.message, 1)
          case "InvalidRequest":
            return line(`${error.message}\nRun \`sacar ${command} --help\` for usage.`, 2)
        }
      })
    )
  )
  if (exit._tag === "Success") return exit.value
  process.stderr.write(`sacar ${command}: unexpected failure: ${String(exit.cause)}\n`)
  return 1
}

export const writeJson = (value: unknown): Effect.Effect<void> =>
  Effect.sync(() => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`))

export const say = (text: string): Effect.Effect<void> => Effect.sync(() => process.stdout.write(`${text}\n`))
