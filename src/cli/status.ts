import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { backoff } from "../common/retry.ts"
import { Consul } from "../consul/consul.ts"
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
  --watch   redraw whenever anything changes (Consul blocking queries), with the
            time Consul last answered; when Consul stops answering it says so
            instead of showing a table that may be stale
  --json    machine-readable output: {"apps": [...]} with the documents as in KV

examples:
  sacar status
  sacar status shop --watch
  sacar status shop --json | jq '.apps[0].nodes'
`

/** How long one blocking read waits for a change: also how often "as of" moves on without one. */
const WATCH_WAIT = "30s"
const STATUS_WATCH_RETRY = backoff("1 second", "10 seconds")

const clock = (at: Date): string => at.toISOString().slice(11, 19) + " UTC"

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
    const redraw = (text: string) =>
      Effect.sync(() => {
        if (watch && process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H")
        process.stdout.write(`${text}\n${watch && !process.stdout.isTTY ? "---\n" : ""}`)
      })
    const show = (snapshots: ReadonlyArray<Parameters<typeof toReport>[0]>, heard?: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (ms) => {
        const now = new Date(ms)
        return json
          ? writeJson({ apps: snapshots.map((s) => toReport(s, now)) })
          : redraw(
            `${heard === undefined ? "" : `${heard}\n\n`}${
              snapshots.length === 0
                ? "no apps yet: create one with `sacar app set <app> --artifact URL`"
                : snapshots.map((s) => renderApp(s, now)).join("\n\n")
            }`
          )
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
        // A blocking query returns at least every WATCH_WAIT, so "last heard" stays
        // fresh while Consul answers; when it stops, the table goes and a sentence says so.
        const consul = yield* Consul
        const prefix = app === undefined ? keys.root : keys.app(app)
        let index = 0
        let lastHeard: Date | undefined
        const round = Effect.gen(function*() {
          const answer = yield* consul.list(prefix, { index, wait: WATCH_WAIT })
          const snapshots = yield* readAll(keys, app)
          index = answer.index
          lastHeard = new Date(yield* Clock.currentTimeMillis)
          yield* show(
            snapshots,
            `as of ${clock(lastHeard)}: Consul at ${consul.address} answered (redrawn on every change)`
          )
        })
        // A watch: every answer redraws; Consul's silence is said on screen and retried
        // on the CLI's own backoff (1 s doubling to 10 s: a person is watching).
        return yield* round.pipe(
          Effect.tapError((error) => {
            index = 0
            const since = lastHeard === undefined ? "never answered" : `last heard from it at ${clock(lastHeard)}`
            return redraw(
              `Consul at ${consul.address} is unreachable (${error.message}); ${since}. ` +
                "Retrying; no table is shown until it answers again."
            )
          }),
          Effect.retry(STATUS_WATCH_RETRY),
          Effect.forever
        )
      })
    )
  })
