/**
 * `sacar controller`: settings, logging and Consul from the environment, then the HTTP
 * server (webhooks, notify, status, health, metrics) and, next to it, the reporter
 * (`report/`: leader election, then GitHub mirroring, auto-deploy, retention). Everything lives in one scope: SIGTERM interrupts it, the server stops
 * accepting, requests in flight finish (or are cut after the grace), the reporter
 * gives up the leader lock, and Consul's connections close.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { loggingLayer } from "../common/logging.ts"
import { type Env, SettingError } from "../common/settings.ts"
import { consulConfigFromEnv } from "../consul/config.ts"
import type { ConsulConfig } from "../consul/config.ts"
import type { Consul } from "../consul/consul.ts"
import { consulLayer } from "../consul/http.ts"
import { githubConfigFromEnv, hasGitHubConfig } from "../github/config.ts"
import type { GitHubConfig } from "../github/config.ts"
import { GitHub } from "../github/github.ts"
import { type Keys, makeKeys } from "../spec/keys.ts"
import { type ListenError, type Listening, serve, type ServeOptions } from "./http/server.ts"
import { Metrics } from "./metrics.ts"
import { makePageFeed } from "./page/feed.ts"
import { reporter } from "./report/index.ts"
import { admission, makeRouter } from "./routes.ts"
import { type ControllerSettings, controllerSettingsFromEnv } from "./settings.ts"

/** Everything `sacar controller` reads from its environment, checked before anything starts. */
export interface ControllerConfig {
  readonly settings: ControllerSettings
  readonly consul: ConsulConfig
  /** undefined: no GitHub settings; the controller runs KV-only (demo, notify-driven setups). */
  readonly github: GitHubConfig | undefined
}

const asSettingError = (e: { readonly variable: string; readonly message: string }) =>
  new SettingError({ variable: e.variable, message: e.message })

/** Reads and checks the whole environment; any problem is one SettingError naming the variable (exit 2). */
export const controllerConfigFromEnv = (env: Env): Effect.Effect<ControllerConfig, SettingError> =>
  Effect.gen(function*() {
    const settings = yield* Effect.try({
      try: () => controllerSettingsFromEnv(env),
      catch: (e) => (e instanceof SettingError ? e : new SettingError({ variable: "SACAR_*", message: String(e) }))
    })
    const consul = yield* consulConfigFromEnv(env).pipe(Effect.mapError(asSettingError))
    const github = hasGitHubConfig(env)
      ? yield* githubConfigFromEnv(env).pipe(Effect.mapError(asSettingError))
      : undefined
    return { settings, consul, github }
  })

/** What the inbound side and the reporter share. */
export interface ControllerParts {
  readonly keys: Keys
  readonly metrics: Metrics
}

/**
 * The HTTP server for `settings`, listening until the scope closes. Exported for
 * in-process use (the demo, tests): it needs only a Consul service.
 */
export const startServer = (
  settings: ControllerSettings,
  parts: ControllerParts,
  options: Partial<Omit<ServeOptions, "host" | "port">> = {}
): Effect.Effect<Listening, ListenError, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const pageFeed = yield* makePageFeed(parts.keys)
    const deps = {
      keys: parts.keys,
      metrics: parts.metrics,
      webhookSecret: settings.webhookSecret,
      previousWebhookSecret: settings.previousWebhookSecret,
      notifyToken: settings.notifyToken,
      readToken: settings.readToken,
      githubAppId: settings.githubAppId,
      pageFeed
    }
    const listening = yield* serve(
      { ...options, admit: admission(deps), host: settings.listen.host, port: settings.listen.port },
      makeRouter(deps)
    )
    // Runs before the server's own close: held page updates answer at once instead of holding the shutdown.
    yield* Effect.addFinalizer(() => pageFeed.release)
    return listening
  })

const describeModes = (config: ControllerConfig) =>
  Effect.gen(function*() {
    const { settings, github } = config
    const mode = github === undefined
      ? "off (no GITHUB_APP_ID or GITHUB_TOKEN)"
      : github.auth.mode === "app"
      ? "GitHub App"
      : "token (commit statuses)"
    yield* Effect.logInfo("controller starting", {
      prefix: settings.prefix,
      consul: config.consul.address,
      github: mode,
      webhooks: settings.webhookSecret === undefined ? "off" : "on",
      notify: settings.notifyToken === undefined ? "off" : "on",
      status: settings.readToken === undefined ? "off" : "on"
    })
    if (settings.webhookSecret === undefined) {
      const level = github?.auth.mode === "app" ? Effect.logWarning : Effect.logInfo
      yield* level(
        "webhooks are off: GITHUB_WEBHOOK_SECRET is not set, POST /github/webhook answers 503" +
          (github?.auth.mode === "app" ? "; check run buttons (Deploy, Prepare) will not work" : "")
      )
    }
    if (settings.notifyToken === undefined) {
      yield* Effect.logInfo("notify is off: SACAR_NOTIFY_TOKEN is not set, POST /v1/apps/<app>/releases answers 503")
    }
    if (settings.readToken === undefined) {
      yield* Effect.logInfo("the status API is off: SACAR_READ_TOKEN is not set, GET /v1/apps answers 503")
    }
  })

/** The controller itself, once its configuration is known. Runs until interrupted. */
export const runController = (config: ControllerConfig): Effect.Effect<never, ListenError, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const parts: ControllerParts = { keys: makeKeys(config.settings.prefix), metrics: new Metrics() }
    yield* describeModes(config)
    yield* startServer(config.settings, parts)
    const report = reporter({
      keys: parts.keys,
      metrics: parts.metrics,
      publicUrl: config.settings.publicUrl,
      pruning: config.settings.pruning
    })
    // Without GitHub settings the leader still auto-deploys and applies retention.
    yield* Effect.forkScoped(
      config.github === undefined ? report : report.pipe(Effect.provide(GitHub.layerFrom(config.github)))
    )
    return yield* Effect.never
  })

/** `sacar controller` from an environment: configuration errors fail with SettingError (exit 2). */
export const controllerProgram = (env: Env): Effect.Effect<void, SettingError | ListenError> =>
  Effect.gen(function*() {
    const logging = yield* Effect.try({
      try: () => loggingLayer(env),
      catch: (e) => (e instanceof SettingError ? e : new SettingError({ variable: "SACAR_LOG_*", message: String(e) }))
    })
    const program = Effect.gen(function*() {
      const config = yield* controllerConfigFromEnv(env)
      return yield* Effect.scoped(runController(config)).pipe(Effect.provide(consulLayer(config.consul)))
    })
    return yield* program.pipe(Effect.provide(logging))
  })
