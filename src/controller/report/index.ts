/**
 * The controller's reporting side, as one effect the controller's main forks:
 * leader election, then (only while leading) the report loop that mirrors what the
 * nodes observed to GitHub, auto-deploys, applies ReleaseSpec retention and prunes
 * what nothing else would delete (pruning.ts).
 *
 * GitHub is optional: without GITHUB_APP_ID/GITHUB_TOKEN (the KV-only demo) the
 * leader still auto-deploys and applies retention, and simply reports nothing.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { Consul } from "../../consul/consul.ts"
import { GitHub } from "../../github/github.ts"
import type { Keys } from "../../spec/keys.ts"
import type { Metrics } from "../metrics.ts"
import { pruneDeliveries } from "../webhook/deliveries.ts"
import { DEFAULT_LEADER_TTL, DEFAULT_LOCK_DELAY, defaultIdentity, whileLeader } from "./leader.ts"
import { reportLoop } from "./loop.ts"
import type { PruningSettings } from "./pruning.ts"

export interface ReporterOptions {
  readonly keys: Keys
  /** SACAR_PUBLIC_URL without a trailing slash: check runs link to `<url>/v1/apps/<app>`. */
  readonly publicUrl?: string | undefined
  readonly metrics?: Metrics | undefined
  /** Leader session TTL (default 15s) and lock-delay (default 15s): failover takes at most their sum. */
  readonly leaderTtl?: string | undefined
  readonly lockDelay?: string | undefined
  /** Written in the leader key; default `<hostname>:<pid>`. */
  readonly identity?: string | undefined
  /** Minimum gap between two updates of one check run; default 2 s. */
  readonly coalesceMs?: number | undefined
  /** SACAR_FAILED_RELEASE_TTL, SACAR_RECORD_TTL, SACAR_ARTIFACT_WAIT; default DEFAULT_PRUNING. */
  readonly pruning?: PruningSettings | undefined
}

/** While leading: delivery marks older than three days go, once an hour (webhook/deliveries.ts). */
const pruneDeliveriesHourly = (keys: Keys) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => pruneDeliveries(keys, new Date(now))).pipe(
    Effect.tap((
      n
    ) => (n > 0 ? Effect.logInfo(`pruned ${n} webhook delivery marks older than three days`) : Effect.void)),
    Effect.catch((e) => Effect.logWarning(`delivery marks not pruned: ${e.message}; trying again in an hour`)),
    Effect.repeat(Schedule.spaced("1 hour"))
  )

/**
 * Runs forever: competes for `<prefix>/_controller/leader` and, while holding it,
 * runs the report loop. Uses the GitHub service when one is provided.
 */
export const reporter = (options: ReporterOptions): Effect.Effect<never, never, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const github = Option.getOrUndefined(yield* Effect.serviceOption(GitHub))
    const metrics = options.metrics
    metrics?.set("sacar_leader", {}, 0)
    return yield* whileLeader(
      {
        key: options.keys.leader,
        ttl: options.leaderTtl ?? DEFAULT_LEADER_TTL,
        lockDelay: options.lockDelay ?? DEFAULT_LOCK_DELAY,
        identity: options.identity ?? defaultIdentity(),
        onChange: (leading) => metrics?.set("sacar_leader", {}, leading ? 1 : 0)
      },
      Effect.andThen(
        Effect.forkScoped(pruneDeliveriesHourly(options.keys)),
        reportLoop({
          keys: options.keys,
          github,
          publicUrl: options.publicUrl,
          metrics,
          coalesceMs: options.coalesceMs,
          pruning: options.pruning
        })
      )
    )
  })
