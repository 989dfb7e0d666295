/**
 * Running a release's deploy-time scripts (`bin/pre-deploy`, `bin/deploy`) the way
 * `bin/prepare` runs: release directory as working directory, only the contract's
 * environment, its own process group, killed at the timeout or on interruption.
 *
 * The running group is recorded in a file (pid and kernel start time). A reconciler
 * killed with -9 cannot kill its script, so the next run of the same script on this
 * node first ends a recorded group that is still alive: a re-run never overlaps the
 * orphan of a dead run.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { endProcessGroup, runProcess } from "../process/run.ts"
import { formatDuration } from "../spec/duration.ts"
import { AppUser } from "./app-user.ts"
import { scriptEnvironment } from "./steps/environment.ts"
import type { ScriptContext } from "./steps/environment.ts"
import { scriptCommand } from "./steps/prepare-script.ts"
import { processStartTime, recordedGroupAlive } from "./steps/processes.ts"

export type DeployScript = "pre-deploy" | "deploy"

/** The file recording the running group of `script` for an app (`appDir` is `$SACAR_ROOT/<app>`). */
export const groupFile = (appDir: string, script: DeployScript) => join(appDir, `.${script}.pid`)

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

interface RecordedGroup {
  readonly pid: number
  readonly processStart: string | undefined
}

const KILL_GRACE_MS = 5_000

/** Ends the group recorded in `groupFile` if it still runs (the orphan of a dead reconciler). */
export const endOrphan = (groupFile: string, script: DeployScript): Effect.Effect<void> =>
  Effect.gen(function*() {
    let recorded: RecordedGroup | undefined
    try {
      recorded = JSON.parse(readFileSync(groupFile, "utf8")) as RecordedGroup
    } catch {
      return
    }
    const { pid, processStart } = recorded
    if (typeof pid !== "number" || !recordedGroupAlive(pid, processStart)) return
    yield* Effect.logWarning(
      `bin/${script} of an earlier run (group ${pid}) is still running; ending it before running again`
    )
    yield* Effect.promise(() => endProcessGroup(pid, KILL_GRACE_MS))
  })

export const runScript = (
  script: DeployScript,
  context: ScriptContext,
  timeoutMs: number,
  /** Where the running process group is recorded, one file per script per app. */
  recordIn: string
): Effect.Effect<ScriptRun, ScriptFailed> =>
  Effect.gen(function*() {
    const command = yield* scriptCommand(join(context.releaseDir, "bin", script))
    if (command === undefined) return { ran: false, ms: 0, log: "", message: `no bin/${script} in the release` }
    yield* endOrphan(recordIn, script)
    const user = yield* AppUser
    const result = yield* runProcess({
      command: command.command,
      args: command.args,
      cwd: context.releaseDir,
      env: scriptEnvironment(context, user),
      user,
      timeoutMs,
      onSpawn: (pid) => {
        try {
          writeFileSync(
            recordIn,
            JSON.stringify({ pid, processStart: processStartTime(pid) } satisfies RecordedGroup) + "\n"
          )
        } catch {
          // Best effort: without the record an orphan can only be waited out.
        }
      }
    }).pipe(
      Effect.ensuring(Effect.sync(() => rmSync(recordIn, { force: true }))),
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
    return {
      ran: true,
      ms: result.ms,
      log: result.tail,
      message: `bin/${script} succeeded in ${formatDuration(result.ms)}`
    }
  })
