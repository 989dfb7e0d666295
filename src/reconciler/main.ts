/**
 * `sacar reconciler` from an environment: settings checked first (a bad one is a
 * SettingError: one line, exit 2), then the loop with Consul, the artifact store and
 * Python provided, and the node's set of fibers for work left for later releases
 * (steps/later.ts). Interruption (SIGTERM via runComponent) closes the scope: work in
 * flight is interrupted, child processes are killed, sessions are destroyed.
 */
import * as Effect from "effect/Effect"
import { ArtifactStore } from "../artifacts/store.ts"
import { loggingLayer } from "../common/logging.ts"
import { SettingError } from "../common/settings.ts"
import type { Env } from "../common/settings.ts"
import { consulConfigFromEnv } from "../consul/config.ts"
import { consulLayer } from "../consul/http.ts"
import { Python } from "../python/python.ts"
import { AppUser } from "./app-user.ts"
import { runReconciler } from "./loop.ts"
import { reconcilerSettings } from "./settings.ts"
import { LaterWork, makeLaterWork } from "./steps/later.ts"

const asSettingError = (variable: string) => (e: unknown) =>
  e instanceof SettingError ? e : new SettingError({ variable, message: `${variable}: ${String(e)}` })

export const reconcilerProgram = (env: Env): Effect.Effect<void, SettingError> =>
  Effect.gen(function*() {
    const logging = yield* Effect.try({ try: () => loggingLayer(env), catch: asSettingError("SACAR_LOG_*") })
    const settings = yield* Effect.try({ try: () => reconcilerSettings(env), catch: asSettingError("SACAR_*") })
    const consul = yield* consulConfigFromEnv(env).pipe(
      Effect.mapError((e) => new SettingError({ variable: e.variable, message: e.message }))
    )
    return yield* Effect.scoped(
      runReconciler({ settings }).pipe(Effect.provideServiceEffect(LaterWork, makeLaterWork))
    ).pipe(
      Effect.provide(consulLayer({ ...consul, sessionNode: settings.consulNode })),
      Effect.provide(ArtifactStore.layer),
      Effect.provide(Python.layer),
      Effect.provideService(AppUser, settings.runAs),
      Effect.annotateLogs({ node: settings.node }),
      Effect.provide(logging)
    )
  })
