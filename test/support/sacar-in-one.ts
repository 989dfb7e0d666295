/**
 * `sacar` commands run one after another inside one child process, for tests about a
 * command's output, exit code and what it writes to Consul. A child `sacar` costs about
 * half a CPU-second to start (effect and the Consul client load each time); here they
 * load once, and each command then costs what it does. The same `runCli` as bin/sacar.ts
 * answers, with the run's environment in process.env and its stdout and stderr captured.
 * What only a process shows (that it exits, its signals, its timeouts) stays with
 * `runSacar`; test/docs/commands.test.ts runs each documented command as a process.
 *
 * Run as a script, this file is that child: requests come over the IPC channel.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { childEnv, type RunResult } from "./sacar.ts"

interface Request {
  readonly id: number
  readonly args: ReadonlyArray<string>
  readonly env: Record<string, string | undefined>
}

interface Response extends RunResult {
  readonly id: number
}

export interface SacarInOne {
  /** `sacar <args>` with the given extra environment, as `runSacar` takes them. */
  readonly run: (args: ReadonlyArray<string>, env?: Record<string, string | undefined>) => Promise<RunResult>
  readonly close: () => Promise<void>
}

/** The child starts with the first command; `close` (in `after`) ends it. */
export const sacarInOne = (timeoutMs = 60_000): SacarInOne => {
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let output = ""
  let nextId = 0
  const pending = new Map<number, { resolve: (r: RunResult) => void; reject: (e: Error) => void }>()
  const start = (): ChildProcess => {
    const started = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe", "ipc"]
    })
    // Anything written outside a command (there should be nothing): kept for the failure message.
    started.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d))
    started.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d))
    started.on("message", (message: Response) => {
      const { id, ...result } = message
      pending.get(id)?.resolve(result)
      pending.delete(id)
    })
    exited = new Promise((resolve) =>
      started.once("exit", (code, signal) => {
        for (const p of pending.values()) p.reject(new Error(`sacar-in-one exited (${code ?? signal}):\n${output}`))
        pending.clear()
        resolve()
      })
    )
    return started
  }
  return {
    run: (args, env = {}) =>
      new Promise<RunResult>((resolve, reject) => {
        child ??= start()
        const id = nextId++
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`sacar ${args.join(" ")} did not finish in ${timeoutMs} ms\n${output}`))
        }, timeoutMs)
        pending.set(id, {
          resolve: (r) => {
            clearTimeout(timer)
            resolve(r)
          },
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          }
        })
        child.send({ id, args, env } satisfies Request)
      }),
    close: async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
    }
  }
}

type Write = typeof process.stdout.write

/** Replaces a stream's write with one that appends to `sink`, returning the original. */
const capture = (stream: NodeJS.WriteStream, sink: { text: string }): Write => {
  const original = stream.write
  stream.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => {
    sink.text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8")
    const done = typeof encoding === "function" ? encoding : callback
    if (typeof done === "function") process.nextTick(done as () => void)
    return true
  }) as Write
  return original
}

if (import.meta.main) {
  const { runCli } = await import("../../src/cli/main.ts")
  const base = { ...process.env }
  const serve = async ({ id, args, env }: Request): Promise<void> => {
    for (const key of Object.keys(process.env)) delete process.env[key]
    for (const [key, value] of Object.entries({ ...base, ...env })) if (value !== undefined) process.env[key] = value
    const stdout = { text: "" }
    const stderr = { text: "" }
    const out = capture(process.stdout, stdout)
    const err = capture(process.stderr, stderr)
    let code: number
    try {
      code = await runCli(args)
    } catch (error) {
      // What bin/sacar.ts does with an error nothing caught: the stack, exit 1.
      stderr.text += `${error instanceof Error ? error.stack : String(error)}\n`
      code = 1
    } finally {
      process.stdout.write = out
      process.stderr.write = err
    }
    process.send!({ id, code, stdout: stdout.text, stderr: stderr.text } satisfies Response)
  }
  let queue = Promise.resolve()
  process.on("message", (request: Request) => {
    queue = queue.then(() => serve(request))
  })
  process.on("disconnect", () => process.exit(0))
}
