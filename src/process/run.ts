/**
 * Runs a child process the way release scripts need: in its own process group so a
 * timeout or an interruption takes down everything it started (pip's builds, a
 * script's background jobs), with only the tail of its combined output kept.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { DEFAULT_TAIL_BYTES, TailBuffer } from "./tail.ts"

export interface RunOptions {
  readonly command: string
  readonly args?: ReadonlyArray<string>
  readonly cwd?: string
  /** The child's whole environment; nothing of the parent's is inherited. */
  readonly env: Readonly<Record<string, string>>
  readonly timeoutMs?: number
  /** How long a SIGTERMed group gets before SIGKILL. */
  readonly killGraceMs?: number
  readonly tailBytes?: number
  /**
   * Run as this uid and gid instead of our own (needs root). Supplementary groups are
   * dropped. Ending the group still works: root may signal any process.
   */
  readonly user?: { readonly uid: number; readonly gid: number } | undefined
  /** Called with the child's pid (= its process group id) once it runs. */
  readonly onSpawn?: (pid: number) => void
}

export interface RunResult {
  readonly tail: string
  readonly ms: number
}

/** The process could not start, or ended with a non-zero code or a signal. */
export class ProcessFailed extends Data.TaggedError("ProcessFailed")<{
  readonly command: string
  readonly exitCode: number | null
  readonly signal: string | null
  readonly tail: string
  readonly message: string
}> {}

export class ProcessTimedOut extends Data.TaggedError("ProcessTimedOut")<{
  readonly command: string
  readonly timeoutMs: number
  readonly tail: string
  readonly message: string
}> {}

const DEFAULT_KILL_GRACE_MS = 5000
// After the main process exits, a grandchild may still hold the output pipes open.
const PIPE_DRAIN_MS = 200

const GROUP_POLL_MS = 50
// After SIGKILL the kernel needs a moment to reap; a zombie nobody reaps must not hang us.
const AFTER_KILL_MS = 1000

/** Whether any process of the group `pgid` still exists. */
export const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const signalGroup = (pgid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // The group is already gone.
  }
}

const waitGone = (pgid: number, withinMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const deadline = performance.now() + withinMs
    const look = () => {
      if (!groupAlive(pgid)) return resolve(true)
      if (performance.now() >= deadline) return resolve(false)
      setTimeout(look, GROUP_POLL_MS)
    }
    look()
  })

/**
 * SIGTERM to every process of the group, SIGKILL to whatever is left after `graceMs`,
 * whether or not the group's leader is still there. Resolves once the group is gone.
 */
export const endProcessGroup = async (pgid: number, graceMs: number): Promise<void> => {
  signalGroup(pgid, "SIGTERM")
  if (await waitGone(pgid, graceMs)) return
  signalGroup(pgid, "SIGKILL")
  await waitGone(pgid, AFTER_KILL_MS)
}

const display = (command: string, args: ReadonlyArray<string>) => [command, ...args].join(" ")

/**
 * Run to completion. Succeeds only on exit code 0. On interruption the group gets
 * SIGTERM, then SIGKILL after the grace, and the fiber waits until the process is gone.
 */
export const runProcess = (options: RunOptions): Effect.Effect<RunResult, ProcessFailed | ProcessTimedOut> =>
  Effect.callback<RunResult, ProcessFailed | ProcessTimedOut>((resume) => {
    const args = options.args ?? []
    const command = display(options.command, args)
    const grace = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS
    const tail = new TailBuffer(options.tailBytes ?? DEFAULT_TAIL_BYTES)
    const started = performance.now()
    const child = spawn(options.command, args, {
      cwd: options.cwd,
      env: { ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      ...(options.user === undefined ? {} : { uid: options.user.uid, gid: options.user.gid })
    })
    if (child.pid !== undefined) options.onSpawn?.(child.pid)
    let exited = false
    let timedOut = false
    const onExit: Array<() => void> = []
    let ending: Promise<void> | undefined
    // The whole group is ended, not only its leader: a grandchild that handles or ignores
    // SIGTERM must not outlive the step because the leader was quick to exit.
    const endGroup = () => (ending ??= child.pid === undefined ? Promise.resolve() : endProcessGroup(child.pid, grace))

    child.stdout.on("data", (chunk: Buffer) => tail.write(chunk))
    child.stderr.on("data", (chunk: Buffer) => tail.write(chunk))

    const timeoutTimer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true
      void endGroup()
    }, options.timeoutMs)

    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (timeoutTimer) clearTimeout(timeoutTimer)
      const ms = Math.round(performance.now() - started)
      const text = tail.toString()
      if (timedOut) {
        resume(Effect.fail(
          new ProcessTimedOut({
            command,
            timeoutMs: options.timeoutMs ?? 0,
            tail: text,
            message: `${command} did not finish within ${options.timeoutMs} ms and was killed`
          })
        ))
      } else if (exitCode === 0) {
        resume(Effect.succeed({ tail: text, ms }))
      } else {
        resume(Effect.fail(
          new ProcessFailed({
            command,
            exitCode,
            signal,
            tail: text,
            message: signal === null
              ? `${command} exited with code ${exitCode}`
              : `${command} was killed by ${signal}`
          })
        ))
      }
      for (const f of onExit) f()
    }

    child.once("error", (error: NodeJS.ErrnoException) => {
      // Spawn failures (ENOENT, EACCES) come without an exit event.
      if (child.pid !== undefined) return
      exited = true
      if (timeoutTimer) clearTimeout(timeoutTimer)
      resume(Effect.fail(
        new ProcessFailed({
          command,
          exitCode: null,
          signal: null,
          tail: tail.toString(),
          message: `${options.command} could not be started: ${error.code ?? error.message}`
        })
      ))
      for (const f of onExit) f()
    })
    child.once("exit", (code, signal) => {
      exited = true
      let done = false
      const settle = () => {
        if (done) return
        done = true
        clearTimeout(drain)
        child.stdout.destroy()
        child.stderr.destroy()
        // Whatever the leader left behind in its group goes with it, before the result.
        if (child.pid !== undefined && groupAlive(child.pid)) void endGroup().then(() => finish(code, signal))
        else finish(code, signal)
      }
      const drain = setTimeout(settle, PIPE_DRAIN_MS)
      child.once("close", settle)
    })

    return Effect.callback<void>((done) => {
      const ended = endGroup()
      if (exited) return done(Effect.promise(() => ended))
      onExit.push(() => done(Effect.promise(() => ended)))
    })
  })
