import { Effect, Stream } from "effect"
import { watchPrefix } from "../consul/watch.ts"
import type { Keys } from "../spec/keys.ts"
import { appExists, toReport } from "../state/report.ts"
import { listApps, readApp } from "../state/snapshot.ts"
import { renderApp } from "../state/table.ts"
import { appArg, parseCommand, UsageError, withUsage } from "./args.ts"
import { cliKeys, runWithConsul, writeJson } from "./run.ts"

const HELP = `usage: sacar status [<app>] [--watch] [--json]

Shows each app's releases by node (phase and time), the deploy target, and each
node's current release and deploy state.

options:
  --watch   redraw whenever anything changes (Consul blocking queries)
  --json    machine-readable output: {"apps": [...]} with the documents as in KV

examples:
  sacar status
  sacar status shop --watch
  sacar status shop --json | jq '.apps[0].nodes'
`

const readAll = (keys: Keys, app: string | undefined) =>
  Effect.gen(function*() {
    const apps = app === undefined ? yield* listApps(keys) : [app]
    return yield* Effect.forEach(apps, (name) => readApp(keys, name), { concurrency: 4 })
  })

export const main = (argv: string[]): Promise<number> =>
  withUsage("status", async () => {
    const parsed = parseCommand(argv, { watch: { type: "boolean" }, json: { type: "boolean" } }, HELP)
    if (parsed === undefined) return 0
    const [appText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appText === undefined ? undefined : appArg(appText)
    const keys = cliKeys()
    const { watch, json } = parsed.values
    const show = (snapshots: ReadonlyArray<Parameters<typeof toReport>[0]>) =>
      json
        ? writeJson({ apps: snapshots.map(toReport) })
        : Effect.sync(() => {
          const text = snapshots.length === 0
            ? "no apps yet: create one with `sacar app set <app> --artifact URL`"
            : snapshots.map((s) => renderApp(s, new Date())).join("\n\n")
          if (watch && process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H")
          process.stdout.write(`${text}\n${watch && !process.stdout.isTTY ? "---\n" : ""}`)
        })
    if (app !== undefined) {
      const exists = await runWithConsul(
        "status",
        Effect.gen(function*() {
          const snapshot = yield* readApp(keys, app)
          if (!appExists(snapshot)) {
            process.stderr.write(`sacar status: app ${app} does not exist (no ${keys.config(app)})\n`)
            return 1
          }
          return 0
        })
      )
      if (exists !== 0) return exists
    }
    return runWithConsul(
      "status",
      Effect.gen(function*() {
        if (!watch) {
          yield* show(yield* readAll(keys, app))
          return 0
        }
        // Level-based: a wake-up only means "look again"; the whole picture is re-read.
        yield* watchPrefix(app === undefined ? keys.root : keys.app(app), { wait: "5m" }).pipe(
          Stream.runForEach(() => readAll(keys, app).pipe(Effect.flatMap(show), Effect.catch(() => Effect.void)))
        )
        return 0
      })
    )
  })
