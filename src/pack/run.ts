// Runs a child process to completion, collecting its output.
import { spawn } from "node:child_process"

export interface CommandResult {
  readonly exitCode: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunFailure {
  readonly spawnError: NodeJS.ErrnoException
}

export function run(
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv }
): Promise<CommandResult | RunFailure> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on("data", (b: Buffer) => out.push(b))
    child.stderr.on("data", (b: Buffer) => err.push(b))
    child.on("error", (spawnError) => resolve({ spawnError }))
    child.on(
      "close",
      (exitCode) =>
        resolve({ exitCode, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") })
    )
  })
}

export function isRunFailure(r: CommandResult | RunFailure): r is RunFailure {
  return "spawnError" in r
}

/** The last `max` bytes of a log, cut at a line start. */
export function tailChars(text: string, max = 4096): string {
  if (text.length <= max) return text.trimEnd()
  const cut = text.slice(-max)
  const nl = cut.indexOf("\n")
  return (nl >= 0 ? cut.slice(nl + 1) : cut).trimEnd()
}
