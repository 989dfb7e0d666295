/**
 * Which apps exist and which of them a GitHub repository feeds. Read fresh from KV
 * on every request: a webhook is rare next to the cost of a stale answer after an
 * operator's `sacar app set`, and one `keys` plus a few `get`s is cheap.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Consul } from "../consul/consul.ts"
import type { ConsulError } from "../consul/consul.ts"
import { decodeDocument } from "../spec/decode.ts"
import { AppConfig } from "../spec/documents.ts"
import type { Keys } from "../spec/keys.ts"
import { appNames } from "../state/snapshot.ts"

export interface KnownApp {
  readonly name: string
  readonly config: AppConfig
}

/** The app's decoded config; undefined when the app has none. An undecodable one is logged and skipped. */
export const readAppConfig = (keys: Keys, name: string): Effect.Effect<AppConfig | undefined, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.config(name)
    const entry = (yield* consul.get(key)).value
    if (entry === undefined) return undefined
    const decoded = decodeDocument(AppConfig, "AppConfig", key, entry.value)
    if (Result.isFailure(decoded)) {
      yield* Effect.logWarning(decoded.failure.message, { app: name })
      return undefined
    }
    return decoded.success
  })

export const allApps = (keys: Keys): Effect.Effect<ReadonlyArray<KnownApp>, ConsulError, Consul> =>
  Effect.gen(function*() {
    const names = yield* appNames(keys)
    const configs = yield* Effect.forEach(names, (name) => readAppConfig(keys, name), { concurrency: 8 })
    return names.flatMap((name, i) => {
      const config = configs[i]
      return config === undefined ? [] : [{ name, config }]
    })
  })

/** Apps whose AppConfig `repo` is this repository; GitHub names compare case-insensitively. */
export const appsForRepo = (
  keys: Keys,
  fullName: string
): Effect.Effect<ReadonlyArray<KnownApp>, ConsulError, Consul> =>
  Effect.map(allApps(keys), (apps) => {
    const wanted = fullName.toLowerCase()
    return apps.filter((a) => a.config.repo !== undefined && a.config.repo.toLowerCase() === wanted)
  })
