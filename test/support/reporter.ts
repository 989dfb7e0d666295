// The controller's reporter (leader election + report loop) on its own, in-process, for
// tests and the benchmark that need it without the HTTP side: a short leader TTL and
// lock-delay, and optionally GitHub client tuning with short waits.
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import { generateKeyPairSync } from "node:crypto"
import { jsonLogger } from "../../src/common/logging.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { Metrics } from "../../src/controller/metrics.ts"
import { reporter } from "../../src/controller/report/index.ts"
import type { PruningSettings } from "../../src/controller/report/pruning.ts"
import type { GitHubTuning } from "../../src/github/config.ts"
import { GitHub } from "../../src/github/github.ts"
import { makeKeys } from "../../src/spec/keys.ts"

/** An RSA key pair for a fake GitHub App: PKCS#1 private (what GitHub issues), SPKI public. */
export const appKeyPair = () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
  return {
    privateKeyPem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString()
  }
}

/** Short waits so retry scenarios take seconds; the retry logic is the production one. */
export const FAST_TUNING: Partial<GitHubTuning> = {
  writeIntervalMs: 50,
  retryBaseMs: 100,
  retries: 2,
  secondaryRateLimitFallbackSec: 1,
  maxRateLimitWaitSec: 5,
  requestTimeoutMs: 5_000
}

export interface ReporterSetup {
  readonly consul: string
  readonly prefix: string
  readonly github?: {
    readonly url: string
    readonly appId?: string
    readonly privateKeyPem?: string
    readonly token?: string
    readonly tuning?: Partial<GitHubTuning>
  }
  readonly publicUrl?: string
  readonly ttl?: string
  readonly lockDelay?: string
  readonly identity?: string
  readonly logLevel?: "Debug" | "Info" | "Warn" | "Error" | "None"
  /** TTLs short enough for a test (default: the controller's own defaults). */
  readonly pruning?: PruningSettings
}

export interface RunningReporter {
  readonly metrics: Metrics
  stop(): Promise<void>
}

const layerFor = (setup: ReporterSetup) => {
  const consul = consulLayer({ address: setup.consul, tls: { verify: true } })
  const gh = setup.github
  if (gh === undefined) return consul
  const auth = gh.token !== undefined
    ? { mode: "token" as const, token: Redacted.make(gh.token) }
    : { mode: "app" as const, appId: gh.appId ?? "1", privateKey: Redacted.make(gh.privateKeyPem ?? "") }
  return Layer.mergeAll(consul, GitHub.layerFrom({ apiUrl: gh.url, auth, ...(gh.tuning ? { tuning: gh.tuning } : {}) }))
}

const program = (setup: ReporterSetup, metrics: Metrics) =>
  Effect.scoped(
    reporter({
      keys: makeKeys(setup.prefix),
      publicUrl: setup.publicUrl,
      metrics,
      leaderTtl: setup.ttl ?? "10s",
      lockDelay: setup.lockDelay ?? "1s",
      identity: setup.identity,
      pruning: setup.pruning
    })
  ).pipe(
    Effect.provide(layerFor(setup)),
    Effect.provide(
      Layer.mergeAll(Logger.layer([jsonLogger]), Layer.succeed(References.MinimumLogLevel, setup.logLevel ?? "None"))
    )
  )

export const startReporter = (setup: ReporterSetup): RunningReporter => {
  const metrics = new Metrics()
  const fiber = Effect.runFork(program(setup, metrics))
  return { metrics, stop: () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined) }
}
