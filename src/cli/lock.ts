import { Effect } from "effect"
import { lockApp } from "../operator/actions.ts"
import { parseDuration } from "../spec/duration.ts"
import { appArg, parseCommand, UsageError, withUsage } from "./args.ts"
import { cliKeys, operatorName, runWithConsul, say } from "./run.ts"

const HELP = `usage: sacar lock <app> -m REASON [--until TIME]

Freezes deploys of the app (writes sacar/<app>/lock): the Deploy button,
auto-deploy and GitHub deployment events are refused with the reason, while
\`sacar deploy --force\` still works and is recorded. TIME is an ISO 8601 time or a
duration from now such as 2h or 3d... (h, m, s).

examples:
  sacar lock shop -m "black friday freeze" --until 2026-11-30T00:00:00Z
  sacar lock shop -m "incident 4711" --until 2h
`

/** An absolute time, or a duration from now. */
export const parseUntil = (text: string, now: Date): string => {
  const ms = parseDuration(text)
  if (ms !== undefined) return new Date(now.getTime() + ms).toISOString()
  const at = Date.parse(text)
  if (Number.isNaN(at) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new UsageError(
      `--until must be an ISO 8601 time (2026-11-30T00:00:00Z) or a duration (2h), got ${JSON.stringify(text)}`
    )
  }
  if (at <= now.getTime()) throw new UsageError(`--until ${text} is already past`)
  return new Date(at).toISOString()
}

export const main = (argv: string[]): Promise<number> =>
  withUsage("lock", async () => {
    const parsed = parseCommand(argv, { message: { type: "string", short: "m" }, until: { type: "string" } }, HELP)
    if (parsed === undefined) return 0
    const [appText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const reason = parsed.values.message?.trim()
    if (!reason) throw new UsageError("a lock needs a reason: -m REASON")
    const until = parsed.values.until === undefined ? undefined : parseUntil(parsed.values.until, new Date())
    const keys = cliKeys()
    return runWithConsul(
      "lock",
      Effect.gen(function*() {
        yield* lockApp(keys, app, { by: operatorName(), reason, ...(until !== undefined ? { until } : {}) })
        yield* say(`${app} locked${until ? ` until ${until}` : ""}: ${reason}`)
        return 0
      })
    )
  })
