/**
 * Running a release's deploy-time scripts (`bin/pre-deploy`, `bin/deploy`) the way
 * `bin/prepare` runs: release directory as working directory, only the contract's
 * environment, its own process group, killed at the timeout or on interruption.
 */
import { join } from "node:path"
import { Data, Effect } from "effect"
import { runProcess } from "../process/run.ts"
import { formatDuration } from "../spec/duration.ts"
import { scriptEnvironment } from "./steps/environment.ts"
import type { ScriptContext } from "./steps/environment.ts"
import { scriptCommand } from "./steps/prepare.ts"

export type DeployScript = "pre-deploy" | "deploy"

export class ScriptFailed extends Data.TaggedError("ScriptFailed")<{
  readonly script: DeployScript
  readonly message: string
  /** Last 4 KiB of its output. */
  readonly log: string
}> {}

export interface ScriptRun {
  /** false when the release has no such script. */
  readonly ran: boolean
  readonly ms: number
  readonly log: string
  readonly message: string
}

export const runScript = (
  script: DeployScript,
  context: ScriptContext,
  timeoutMs: number
): Effect.Effect<ScriptRun, ScriptFailed> =>
  Effect.gen(function*() {
    const command = yield* scriptCommand(join(context.releaseDir, "bin", script))
    if (command === undefined) return { ran: false, ms: 0, log: "", message: `no bin/${script} in the release` }
    const result = yield* runProcess({
      command: command.command,
      args: command.args,
      cwd: context.releaseDir,
      env: scriptEnvironment(context),
      timeoutMs
    }).pipe(
      Effect.mapError((error) =>
        new ScriptFailed({
          script,
          log: error.tail,
          message: error._tag === "ProcessTimedOut"
            ? `bin/${script} did not finish within the deployTimeout (${formatDuration(timeoutMs)}) and was killed`
            : error.exitCode === null && error.signal === null
            ? `bin/${script} could not be started: ${error.message}`
            : `bin/${script} failed (${error.signal ?? `exit code ${error.exitCode}`})`
        })
      )
    )
    return { ran: true, ms: result.ms, log: result.tail, message: `bin/${script} succeeded in ${formatDuration(result.ms)}` }
  })
