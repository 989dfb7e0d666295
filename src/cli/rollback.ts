import * as Effect from "effect/Effect"
import { rollback } from "../operator/actions.ts"
import { shortSha } from "../spec/names.ts"
import { appArg, parseCommand, UsageError, withUsage } from "./args.ts"
import { cliKeys, operatorName, runWithConsul, say } from "./run.ts"

const HELP = `usage: sacar rollback <app>

Deploys the release that was live before the current one (nodes keep it on disk)
and pins the app there: auto-deploy pauses until \`sacar unpin <app>\`. A rollback
goes through a deploy lock, and the DeploySpec records it (force, reason rollback).

example:
  sacar rollback shop
`

export const main = (argv: string[]): Promise<number> =>
  withUsage("rollback", async () => {
    const parsed = parseCommand(argv, {}, HELP)
    if (parsed === undefined) return 0
    const [appText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const keys = cliKeys()
    return runWithConsul(
      "rollback",
      Effect.gen(function*() {
        const { sha, from } = yield* rollback(keys, app, operatorName())
        yield* say(
          `rolling ${app} back from ${from ? shortSha(from) : "?"} to ${
            shortSha(sha)
          }; pinned (auto-deploy paused until \`sacar unpin ${app}\`)`
        )
        return 0
      })
    )
  })
