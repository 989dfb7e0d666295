import { Effect } from "effect"
import { requestDeploy } from "../operator/actions.ts"
import { shortSha } from "../spec/names.ts"
import { appArg, parseCommand, shaArg, UsageError, withUsage } from "./args.ts"
import { cliKeys, operatorName, runWithConsul, say } from "./run.ts"

const HELP = `usage: sacar deploy <app> <sha> [--force] [-m REASON]

Makes the release live on every node of the app (writes sacar/<app>/deploy). Each
run is a new deploy, so deploying the live sha again re-runs bin/deploy. A sha that
was never released is prepared first. A locked app refuses unless --force, which is
recorded in the DeploySpec.

examples:
  sacar deploy shop 4f2c...e1
  sacar deploy shop 4f2c...e1 --force -m "hotfix during freeze"
  # the same with Consul alone:
  consul kv put sacar/shop/deploy '{"sha":"<sha>"}'
`

export const main = (argv: string[]): Promise<number> =>
  withUsage("deploy", async () => {
    const parsed = parseCommand(argv, { force: { type: "boolean" }, message: { type: "string", short: "m" } }, HELP)
    if (parsed === undefined) return 0
    const [appText, shaText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const sha = shaArg(shaText)
    const force = parsed.values.force === true
    const reason = parsed.values.message
    const keys = cliKeys()
    return runWithConsul(
      "deploy",
      Effect.gen(function*() {
        const { prepared } = yield* requestDeploy(keys, app, sha, {
          by: operatorName(),
          force,
          ...(reason !== undefined ? { reason } : {})
        })
        yield* say(
          `deploy of ${app} ${shortSha(sha)} requested${force ? " (forced)" : ""}${
            prepared ? "" : "; it has no release yet, so nodes prepare it first"
          }`
        )
        return 0
      })
    )
  })
