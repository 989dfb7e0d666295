/**
 * The demo's child processes, in one known list, so that every way out (done,
 * failure, Ctrl-C, a crash of the demo itself) stops all of them. Each child leads a
 * process group of its own: the terminal's Ctrl-C reaches only the demo, which then
 * gives each child exactly one SIGTERM (a second signal would make a component skip
 * its clean shutdown), and a SIGKILL after the grace takes the whole group.
 */
import { spawn } from "node:child_process"
import { appendFileSync, closeSync, openSync } from "node:fs"
import { DEMO_DIR_VARIABLE, killProcessesUsing } from "./leftovers.ts"

export interface ChildSpec {
  /** Short name for messages and the pids file, e.g. "demo-1". */
  readonly name: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: NodeJS.ProcessEnv
  /** stdout and stderr go here (appended). */
  readonly logFile: string
}

export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Child {
  readonly name: string
  readonly pid: number
  readonly logFile: string
  /** Resolves when the process has exited. */
  readonly exited: Promise<ChildExit>
  /** undefined while it runs. */
  readonly exit: () => ChildExit | undefined
}

export const describeExit = (exit: ChildExit): string =>
  exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`

const signalGroup = (pid: number, sig: NodeJS.Signals) => {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, sig)
    } catch {
      // gone already
    }
  }
}

export interface SupervisorOptions {
  /** The demo folder: children carry it in SACAR_DEMO_DIR, and stragglers are found by it. */
  readonly dir: string
  /** "pid name" lines are appended here as children start. */
  readonly pidsFile: string
  /** TERM to KILL, per child. */
  readonly graceMs?: number
}

export class Supervisor {
  readonly #options: SupervisorOptions
  readonly #children: Child[] = []
  readonly #unexpected: Array<(child: Child, exit: ChildExit) => void> = []
  #stopping = false

  constructor(options: SupervisorOptions) {
    this.#options = options
  }

  get children(): ReadonlyArray<Child> {
    return this.#children
  }

  /** Called when a child exits on its own, before stopAll. */
  onUnexpectedExit(listener: (child: Child, exit: ChildExit) => void): void {
    this.#unexpected.push(listener)
  }

  start(spec: ChildSpec): Promise<Child> {
    if (this.#stopping) return Promise.reject(new Error(`not starting ${spec.name}: the demo is stopping`))
    const fd = openSync(spec.logFile, "a")
    return new Promise((resolve, reject) => {
      let exit: ChildExit | undefined
      const proc = spawn(spec.command, [...spec.args], {
        env: { ...spec.env, [DEMO_DIR_VARIABLE]: this.#options.dir },
        stdio: ["ignore", fd, fd],
        detached: true
      })
      closeSync(fd)
      const exited = new Promise<ChildExit>((done) => {
        proc.once("exit", (code, signal) => {
          exit = { code, signal }
          done(exit)
        })
      })
      proc.once("error", (cause) => reject(new Error(`cannot start ${spec.name} (${spec.command}): ${cause.message}`)))
      proc.once("spawn", () => {
        const pid = proc.pid!
        const child: Child = { name: spec.name, pid, logFile: spec.logFile, exited, exit: () => exit }
        this.#children.push(child)
        appendFileSync(this.#options.pidsFile, `${pid} ${spec.name}\n`)
        void exited.then((e) => {
          if (!this.#stopping) { for (const listener of this.#unexpected) listener(child, e) }
        })
        resolve(child)
      })
    })
  }

  /**
   * SIGTERM to every running child at once, SIGKILL to the groups of those still there
   * after the grace, then a sweep for any script that outlived a killed child.
   * Returns the names of the children that had to be killed.
   */
  async stopAll(): Promise<string[]> {
    this.#stopping = true
    const graceMs = this.#options.graceMs ?? 8_000
    const running = this.#children.filter((c) => c.exit() === undefined)
    for (const child of running) signalGroup(child.pid, "SIGTERM")
    const killed: string[] = []
    await Promise.all(
      running.map(async (child) => {
        let timer: NodeJS.Timeout | undefined
        const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), graceMs)))
        const outcome = await Promise.race([child.exited, late])
        clearTimeout(timer)
        if (outcome === "late") {
          killed.push(child.name)
          signalGroup(child.pid, "SIGKILL")
          await child.exited
        }
      })
    )
    if (killed.length > 0) killProcessesUsing(this.#options.dir)
    return killed
  }

  /** Last resort for paths that cannot wait (an uncaught exception, process exit): SIGKILL now. */
  killAllNow(): void {
    this.#stopping = true
    for (const child of this.#children) if (child.exit() === undefined) signalGroup(child.pid, "SIGKILL")
  }
}
