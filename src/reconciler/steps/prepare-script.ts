/**
 * Step 6: the release's own `bin/prepare`, once per release per node, after install.
 * It runs in the release directory with only the contract's variables, in its own
 * process group, killed at the deadline. An executable script is executed as is; one
 * that lost its executable bit (zip-based CI uploads do that) runs through the
 * interpreter of its `#!` line, or `sh` without one, which is what exec would have done.
 * No `bin/prepare` means nothing to do.
 */
import * as Effect from "effect/Effect"
import { access, constants, open } from "node:fs/promises"
import { join } from "node:path"
import { nowIso } from "../../common/time.ts"
import { runProcess } from "../../process/run.ts"
import { AppUser } from "../app-user.ts"
import { scriptEnvironment } from "./environment.ts"
import type { ScriptContext } from "./environment.ts"
import { type CommandFailed, commandFailed } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { hasMarker, writeMarker } from "./markers.ts"

export interface ScriptCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
}

/** How to start `script`, or undefined when there is no such file. */
export const scriptCommand = (script: string): Effect.Effect<ScriptCommand | undefined> =>
  Effect.promise(async () => {
    if (!(await access(script).then(() => true, () => false))) return undefined
    if (await access(script, constants.X_OK).then(() => true, () => false)) return { command: script, args: [] }
    const handle = await open(script, "r")
    const head = Buffer.alloc(256)
    let bytesRead: number
    try {
      ;({ bytesRead } = await handle.read(head, 0, head.length, 0))
    } finally {
      await handle.close()
    }
    const first = head.subarray(0, bytesRead).toString("utf8").split("\n")[0] ?? ""
    if (!first.startsWith("#!")) return { command: "/bin/sh", args: [script] }
    // Like the kernel: the interpreter, then at most one argument.
    const line = first.slice(2).trim()
    const space = line.search(/\s/)
    return space === -1
      ? { command: line, args: [script] }
      : { command: line.slice(0, space), args: [line.slice(space).trim(), script] }
  })

export interface PrepareInput extends ScriptContext {
  readonly meta: string
  readonly timeoutMs: number
  /** Told each command's pid, so the lock can name what is running. */
  readonly onSpawn?: (pid: number) => void
}

export const runPrepare = (
  input: PrepareInput
): Effect.Effect<{ readonly skipped: boolean; readonly ran: boolean }, CommandFailed | LocalFailure> =>
  Effect.gen(function*() {
    if (yield* hasMarker(input.meta, "prepared")) return { skipped: true, ran: false }
    const script = yield* scriptCommand(join(input.releaseDir, "bin", "prepare"))
    if (script !== undefined) {
      const user = yield* AppUser
      yield* runProcess({
        command: script.command,
        args: script.args,
        cwd: input.releaseDir,
        env: scriptEnvironment(input, user),
        user,
        timeoutMs: input.timeoutMs,
        ...(input.onSpawn === undefined ? {} : { onSpawn: input.onSpawn })
      }).pipe(
        Effect.mapError((error) =>
          commandFailed("prepare", "bin/prepare", error, (e) =>
            e._tag === "ProcessTimedOut"
              ? `bin/prepare did not finish within ${input.timeoutMs} ms and was killed`
              : e.exitCode === null && e.signal === null
              ? `bin/prepare could not be started: ${e.message}`
              : `bin/prepare failed (${e.signal ?? `exit code ${e.exitCode}`}); see the log`)
        )
      )
    }
    yield* writeMarker(input.meta, "prepared", { at: yield* nowIso, ran: script !== undefined }, "prepare")
    return { skipped: false, ran: script !== undefined }
  })
