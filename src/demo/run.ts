/**
 * One demo run from start to exit code: sets the stage up, runs the walk-through, and
 * tears everything down on every way out. Exit codes: 0 done (or Ctrl-C after the
 * walk-through under --keep-running), 1 the walk-through failed or took too long,
 * 2 a folder or prefix the demo must not touch, 130 interrupted.
 */
import { readFileSync } from "node:fs"
import { readFile, writeFile } from "node:fs/promises"
import { lastLines } from "./components.ts"
import { ConsulGone, type DemoConsul, openConsul, PrefixRefused } from "./consul.ts"
import { type Display, liveDisplay, plainDisplay } from "./display.ts"
import { demoFolder, FolderRefused, prepareFolder } from "./folder.ts"
import { killProcessesUsing } from "./leftovers.ts"
import { shownPath } from "./next-steps.ts"
import { chooseConsul, type DemoOptions, WALKTHROUGH_BOUND_MS } from "./options.ts"
import { describeExit, Supervisor } from "./processes.ts"
import { DemoFailed, keepFollowing, showNextSteps, type Stage, walkThrough } from "./walkthrough.ts"
import { startWatchdog, type Watchdog } from "./watchdog.ts"

/** Ctrl-C, SIGTERM or a closed terminal. */
export class Interrupted extends Error {}

export interface DemoIo {
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
  readonly out: { write(text: string): void; readonly isTTY?: boolean; readonly columns?: number }
  readonly err: { write(text: string): void }
  /** The walk-through's time bound; tests shorten it. */
  readonly boundMs?: number
}

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const

export async function runDemo(options: DemoOptions, io: DemoIo): Promise<number> {
  const display: Display = io.out.isTTY === true && !options.once
    ? liveDisplay((t) => io.out.write(t), () => io.out.columns ?? 80)
    : plainDisplay((t) => io.out.write(t))
  const folder = demoFolder(options.dir)
  const stop = new AbortController()
  const supervisor = new Supervisor({ dir: folder.dir, pidsFile: folder.pids })
  let consul: DemoConsul | undefined
  let watchdog: Watchdog | undefined
  let walked = false
  // Set once the folder is known to be the demo's: only then may anything be swept out of
  // it (on a refused --dir /var/lib/sacar the real reconciler's SACAR_ROOT points there).
  let owned = false
  const sweep = () => {
    if (owned) killProcessesUsing(folder.dir)
  }

  // The ways out that cannot wait for the finally below: a second Ctrl-C, a crash, exit().
  let signals = 0
  const onSignal = (name: NodeJS.Signals) => {
    signals += 1
    if (signals === 1) {
      stop.abort(new Interrupted(`${name}: stopping`))
      return
    }
    supervisor.killAllNow()
    sweep()
    io.err.write(`sacar demo: second ${name}, killed everything\n`)
    process.exit(130)
  }
  const onCrash = (error: unknown) => {
    supervisor.killAllNow()
    sweep()
    io.err.write(`sacar demo: crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  }
  const onExit = () => supervisor.killAllNow()
  for (const s of STOP_SIGNALS) process.on(s, onSignal)
  process.on("uncaughtException", onCrash)
  process.on("unhandledRejection", onCrash)
  process.on("exit", onExit)

  supervisor.onUnexpectedExit((child, exit) => {
    let log = ""
    try {
      log = readFileSync(child.logFile, "utf8")
    } catch {
      // no log yet
    }
    stop.abort(
      new DemoFailed(
        `${child.name} (pid ${child.pid}) ${describeExit(exit)}${
          log.trim() ? `; the end of ${shownPath(child.logFile, io.cwd)}:\n${lastLines(log, 15)}` : ""
        }`
      )
    )
  })
  const bound = setTimeout(
    () =>
      stop.abort(
        new DemoFailed(
          `the walk-through did not finish within ${
            Math.round((io.boundMs ?? WALKTHROUGH_BOUND_MS) / 1000)
          } s; see the logs in ${shownPath(folder.logs, io.cwd)}`
        )
      ),
    io.boundMs ?? WALKTHROUGH_BOUND_MS
  )

  try {
    // Read before the wipe: the address an earlier run's Consul had, to explain a dead CONSUL_HTTP_ADDR.
    const earlierAddress = (await readFile(folder.consulAddress, "utf8").catch(() => "")).trim() || undefined
    const { leftovers } = await prepareFolder(folder)
    owned = true
    watchdog = startWatchdog(folder.dir, folder.pids)
    display.say(
      `sacar demo: one release of examples/shop, walked to live on three nodes; everything in ${
        shownPath(folder.dir, io.cwd)
      }/`
    )
    if (leftovers > 0) display.say(`(stopped ${leftovers} processes an earlier run left behind)`)
    stop.signal.throwIfAborted()
    consul = await openConsul(chooseConsul(io.env), io.env, folder.dir, earlierAddress)
    await writeFile(folder.consulAddress, `${consul.address}\n`)
    stop.signal.throwIfAborted()
    const stage: Stage = { options, folder, consul, supervisor, display, signal: stop.signal, env: io.env, cwd: io.cwd }
    const result = await walkThrough(stage)
    clearTimeout(bound)
    walked = true
    showNextSteps(stage, result)
    if (options.keepRunning) await keepFollowing(stage, result)
    return 0
  } catch (thrown) {
    const reason: unknown = stop.signal.aborted ? stop.signal.reason : thrown
    display.freeze()
    if (reason instanceof Interrupted) {
      display.say(walked ? "stopping" : "interrupted; stopping")
      return walked ? 0 : 130
    }
    if (reason instanceof FolderRefused || reason instanceof PrefixRefused) {
      io.err.write(`sacar demo: ${reason.message}\n`)
      return 2
    }
    if (reason instanceof ConsulGone) {
      io.err.write(`sacar demo: ${reason.message}\n`)
      return 1
    }
    const message = reason instanceof Error ? reason.message : String(reason)
    io.err.write(
      `sacar demo: ${
        reason instanceof DemoFailed
          ? message
          : `unexpected failure: ${reason instanceof Error ? (reason.stack ?? message) : message}`
      }\n`
    )
    io.err.write(`sacar demo: logs in ${shownPath(folder.logs, io.cwd)}/\n`)
    return 1
  } finally {
    clearTimeout(bound)
    const killed = await supervisor.stopAll()
    if (killed.length > 0) io.err.write(`sacar demo: ${killed.join(", ")} did not stop on SIGTERM and were killed\n`)
    await consul?.close()
    // Anything still running out of the folder (a script of a killed reconciler, pip of an
    // interrupted pack) goes too: nothing the demo started outlives it.
    sweep()
    watchdog?.release()
    for (const s of STOP_SIGNALS) process.off(s, onSignal)
    process.off("uncaughtException", onCrash)
    process.off("unhandledRejection", onCrash)
    process.off("exit", onExit)
  }
}
