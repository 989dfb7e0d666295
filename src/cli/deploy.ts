import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { watchPrefix } from "../consul/watch.ts"
import { deploySha, findSha } from "../operator/actions.ts"
import { failureReport, type NodeProgress, progressLines, rolloutOf } from "../operator/rollout.ts"
import type { Keys } from "../spec/keys.ts"
import { shortSha } from "../spec/names.ts"
import { readApp } from "../state/snapshot.ts"
import { appArg, parseCommand, shaArg, UsageError, withUsage } from "./args.ts"
import { cliKeys, operatorName, runWithConsul, say } from "./run.ts"

const HELP = `usage: sacar deploy <app> <sha> [--force] [--wait] [-m REASON]

Makes the release live on every node of the app (writes sacar/<app>/deploy). Each
run is a new deploy, so deploying the live sha again re-runs bin/deploy. A sha that
was never released is prepared first. A locked app refuses unless --force, which is
recorded in the DeploySpec. <sha> is the full commit id or a unique prefix of at
least 7 characters among the app's releases and deploys.

options:
  --force        deploy through a lock (recorded, with -m as the reason)
  --wait         follow the deploy node by node: exit 0 once it is live on every
                 node, 1 as soon as a node fails it (with what failed and the end of
                 its output), or when another deploy supersedes it
  -m REASON      why, recorded in the DeploySpec

examples:
  sacar deploy shop 4f2c9e1
  sacar deploy shop 4f2c9e1 --wait
  sacar deploy shop 4f2c9e1 --force -m "hotfix during freeze"
  # the same with Consul alone:
  consul kv put sacar/shop/deploy '{"sha":"<sha>"}'
`

/** Follows generation `generation` until it is live everywhere (0) or not going to be (1). */
const follow = (keys: Keys, app: string, sha: string, generation: number) =>
  Effect.gen(function*() {
    let shown: ReadonlyArray<NodeProgress> = []
    const last = yield* watchPrefix(keys.app(app), { wait: "1m" }).pipe(
      Stream.mapEffect(() => readApp(keys, app)),
      Stream.map((snapshot) => rolloutOf(snapshot, generation)),
      Stream.tap((rollout) =>
        Effect.sync(() => {
          for (const line of progressLines(sha, shown, rollout.nodes)) process.stdout.write(`${line}\n`)
          shown = rollout.nodes
        })
      ),
      Stream.takeUntil((rollout) => rollout.outcome._tag !== "Running"),
      Stream.runLast
    )
    if (Option.isNone(last)) return 1
    const outcome = last.value.outcome
    switch (outcome._tag) {
      case "Live":
        yield* say(`${app} ${shortSha(sha)} is live on all ${last.value.nodes.length} nodes`)
        return 0
      case "Failed":
        process.stderr.write(`sacar deploy: ${app} ${shortSha(sha)} failed\n${failureReport(outcome.failed)}\n`)
        process.stderr.write(
          `sacar deploy: \`sacar logs ${app} --sha ${
            shortSha(sha)
          }\` shows everything recorded; \`sacar rollback ${app}\` goes back\n`
        )
        return 1
      case "Superseded":
        process.stderr.write(`sacar deploy: superseded by deploy generation ${outcome.by} before it finished\n`)
        return 1
      case "NoNodes":
        process.stderr.write(`sacar deploy: no live node matches ${app}'s nodes, so nothing deploys it\n`)
        return 1
      case "Running":
        return 1
    }
  })

export const main = (argv: string[]): Promise<number> =>
  withUsage("deploy", async () => {
    const parsed = parseCommand(
      argv,
      { force: { type: "boolean" }, wait: { type: "boolean" }, message: { type: "string", short: "m" } },
      HELP
    )
    if (parsed === undefined) return 0
    const [appText, shaText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const typed = shaArg(shaText)
    const force = parsed.values.force === true
    const reason = parsed.values.message
    const keys = cliKeys()
    return runWithConsul(
      "deploy",
      Effect.gen(function*() {
        const sha = yield* findSha(keys, app, typed)
        const { prepared, generation } = yield* deploySha(keys, app, sha, {
          by: operatorName(),
          force,
          ...(reason !== undefined ? { reason } : {})
        })
        yield* say(
          `deploy of ${app} ${shortSha(sha)} requested${force ? " (forced)" : ""}${
            prepared ? "" : "; it has no release yet, so nodes prepare it first"
          } (generation ${generation})`
        )
        return parsed.values.wait === true ? yield* follow(keys, app, sha, generation) : 0
      })
    )
  })
