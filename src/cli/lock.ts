import * as Effect from "effect/Effect"
import { lockApp } from "../operator/actions.ts"
import { parseDuration } from "../spec/duration.ts"
import { appArg, parseCommand, UsageError, withUsage } from "./args.ts"
import { cliKeys, operatorName, runWithConsul, say } from "./run.ts"

const HELP = `usage: sacar lock <app> -m REASON [--until TIME] [--force]

Freezes deploys of the app (writes sacar/<app>/lock): the Deploy button,
auto-deploy and GitHub deployment events are refused with the reason, while
\`sacar deploy --force\` still works and is recorded. TIME is an ISO 8601 time
(2030-11-30T00:00:00Z) or a duration from now in h, m and s (2h, 90m, 1h30m).
An app locked by someone else stays theirs: --force replaces their lock and reason.

examples:
  sacar lock shop -m "black friday freeze" --until 2030-11-30T00:00:00Z
  sacar lock shop -m "incident 4711" --until 2h
  sacar lock shop -m "incident 4711" --until 1h30m --force
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
    const parsed = parseCommand(argv, {
      message: { type: "string", short: "m" },
      until: { type: "string" },
      force: { type: "boolean" }
    }, HELP)
    if (parsed === undefined) return 0
    const [appText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const reason = parsed.values.message?.trim()
    if (!reason) throw new UsageError("a lock needs a reason: -m REASON")
    // Argument parsing, before any Effect runs: a bad or past --until is a usage error.
    const until = parsed.values.until === undefined ? undefined : parseUntil(parsed.values.until, new Date())
    const keys = cliKeys()
    return runWithConsul(
      "lock",
      Effect.gen(function*() {
        const { replaced } = yield* lockApp(keys, app, {
          by: operatorName(),
          reason,
          ...(until !== undefined ? { until } : {})
        }, { force: parsed.values.force === true })
        yield* say(
          `${app} locked${until ? ` until ${until}` : ""}: ${reason}${
            replaced ? ` (replaced ${replaced.by}'s lock: ${replaced.reason})` : ""
          }`
        )
        return 0
      })
    )
  })
