/**
 * Argument parsing shared by every command: node's parseArgs in strict mode, `--help`
 * printing the command's help (exit 0), and any mistake reported as one line plus a
 * pointer to `--help` (exit 2).
 */
import { parseArgs, type ParseArgsConfig } from "node:util"
import { isAppName } from "../spec/names.ts"

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>

export interface Parsed<O extends Options> {
  readonly values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>["values"]
  readonly positionals: string[]
}

/** Returns undefined when --help was asked for (and printed). */
export const parseCommand = <O extends Options>(argv: string[], options: O, help: string): Parsed<O> | undefined => {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(help.endsWith("\n") ? help : `${help}\n`)
    return undefined
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
    return { values, positionals } as Parsed<O>
  } catch (cause) {
    throw new UsageError((cause as Error).message.replace(/\. To specify a positional argument.*$/s, ""))
  }
}

export const appArg = (value: string | undefined): string => {
  if (value === undefined) throw new UsageError("missing <app>")
  if (!isAppName(value))
    throw new UsageError(`${JSON.stringify(value)} is not an app name (a-z, 0-9 and '-', up to 63 characters)`)
  return value
}

/** A sha as typed: the full 40 characters or a prefix of at least 7 (resolved against the app by `findSha`). */
export const shaArg = (value: string | undefined): string => {
  if (value === undefined) throw new UsageError("missing <sha>")
  const text = value.toLowerCase()
  if (!/^[0-9a-f]{7,40}$/.test(text))
    throw new UsageError(
      `${JSON.stringify(value)} is not a commit sha (40 hex characters, or a unique prefix of at least 7)`
    )
  return text
}

/** Runs a command body, turning UsageError into exit 2 with a pointer to --help. */
export const withUsage = async (command: string, body: () => Promise<number>): Promise<number> => {
  try {
    return await body()
  } catch (cause) {
    if (cause instanceof UsageError) {
      process.stderr.write(`sacar ${command}: ${cause.message}\nRun \`sacar ${command} --help\` for usage.\n`)
      return 2
    }
    throw cause
  }
}
