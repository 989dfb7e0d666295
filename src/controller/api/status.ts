/**
 * `GET /v1/apps` and `GET /v1/apps/<app>`: the same report as `sacar status --json`
 * (`StatusReport` in src/spec/status-report.ts), so a script can use either. Documents
 * that do not decode are listed in `problems` instead of failing the answer: this is
 * where an operator looks when something is wrong.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Consul, ConsulError } from "../../consul/consul.ts"
import type { Keys } from "../../spec/keys.ts"
import { isAppName } from "../../spec/names.ts"
import { appExists, toReport } from "../../state/report.ts"
import { appNames, readApp } from "../../state/snapshot.ts"
import { type HttpResponse, json, jsonError } from "../http/types.ts"

export const handleAppStatus = (keys: Keys, app: string): Effect.Effect<HttpResponse, ConsulError, Consul> =>
  Effect.gen(function*() {
    if (!isAppName(app)) return jsonError(404, `no app ${JSON.stringify(app)}: not a valid app name`)
    const snapshot = yield* readApp(keys, app)
    const now = new Date(yield* Clock.currentTimeMillis)
    return appExists(snapshot)
      ? json(200, toReport(snapshot, now))
      : jsonError(404, `no app ${JSON.stringify(app)} under ${keys.prefix}/`)
  })

export const handleAppList = (keys: Keys): Effect.Effect<HttpResponse, ConsulError, Consul> =>
  Effect.gen(function*() {
    const names = yield* appNames(keys)
    const snapshots = yield* Effect.forEach(names, (name) => readApp(keys, name), { concurrency: 4 })
    const now = new Date(yield* Clock.currentTimeMillis)
    return json(200, { apps: snapshots.filter(appExists).map((s) => toReport(s, now)) })
  })
