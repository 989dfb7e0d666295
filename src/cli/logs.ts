import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { watchPrefix } from "../consul/watch.ts"
import { findSha } from "../operator/actions.ts"
import { RequestRefused } from "../operator/errors.ts"
import { type LogFilter, logRecords } from "../operator/logs.ts"
import { isNodeName } from "../spec/names.ts"
import { appExists } from "../state/report.ts"
import { readApp } from "../state/snapshot.ts"
import { appArg, parseCommand, shaArg, UsageError, withUsage } from "./args.ts"
import { cliKeys, runWithConsul } from "./run.ts"

const HELP = `usage: sacar logs <app> [--node N] [--sha S] [-f]

Shows what the nodes recorded for the app's prepares and deploys: per node, each
release's attempt, phase and message with the end of the failing step's output,
and the last deploy with the end of bin/deploy's output. The reconciler's own log
(\`nomad alloc logs\`) has a line for every prepare and deploy outcome as well.

options:
  --node N     only this node
  --sha S      only this release (full sha or a unique prefix of at least 7)
  -f, --follow keep going and print records as the nodes update them (Ctrl-C ends)

examples:
  sacar logs shop
  sacar logs shop --node web-1 --sha 4f2c9e1
  sacar logs shop -f
`

export const main = (argv: string[]): Promise<number> =>
  withUsage("logs", async () => {
    const parsed = parseCommand(
      argv,
      { node: { type: "string" }, sha: { type: "string" }, follow: { type: "boolean", short: "f" } },
      HELP
    )
    if (parsed === undefined) return 0
    const [appText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const { node, follow } = parsed.values
    if (node !== undefined && !isNodeName(node)) throw new UsageError(`${JSON.stringify(node)} is not a node name`)
    const typed = parsed.values.sha === undefined ? undefined : shaArg(parsed.values.sha)
    const keys = cliKeys()
    return runWithConsul(
      "logs",
      Effect.gen(function*() {
        if (!appExists(yield* readApp(keys, app)))
          return yield* new RequestRefused({ message: `app ${app} does not exist (no ${keys.config(app)})` })
        const filter: LogFilter = { node, sha: typed === undefined ? undefined : yield* findSha(keys, app, typed) }
        const printed = new Map<string, string>()
        const show = Effect.gen(function*() {
          const records = logRecords(yield* readApp(keys, app), filter)
          for (const r of records) {
            if (printed.get(r.id) === r.text) continue
            printed.set(r.id, r.text)
            process.stdout.write(`${r.text}\n`)
          }
          return records.length
        })
        if (follow !== true) {
          if ((yield* show) === 0) {
            process.stdout.write(
              `no node has recorded anything for ${app}${node ? ` on ${node}` : ""}${
                filter.sha ? ` at ${filter.sha}` : ""
              } yet\n`
            )
          }
          return 0
        }
        yield* watchPrefix(keys.statuses(app), { wait: "5m" }).pipe(Stream.runForEach(() => show))
        return 0
      })
    )
  })
