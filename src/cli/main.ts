/**
 * `sacar <command> ...` from its arguments to its exit code: the top-level help and
 * version, the subcommand looked up and loaded, and a setting the command could not
 * read turned into one line. bin/sacar.ts is this plus the process around it.
 */
import { commandModule, COMMANDS, usage } from "./commands.ts"

export const runCli = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [name, ...rest] = argv
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  if (name === "--version" || name === "-v") {
    const { SACAR_VERSION } = await import("../common/version.ts")
    process.stdout.write(`${SACAR_VERSION}\n`)
    return 0
  }
  const load = commandModule(name)
  if (load === undefined) {
    process.stderr.write(
      `sacar: unknown command ${JSON.stringify(name)}; commands: ${COMMANDS.map((c) => c.name).join(", ")}\n`
    )
    return 2
  }
  const { main } = await load()
  try {
    return await main(rest)
  } catch (error) {
    // A setting the command read before anything else (SACAR_PREFIX): one line, exit 2.
    const { SettingError } = await import("../common/settings.ts")
    if (!(error instanceof SettingError)) throw error
    process.stderr.write(`sacar ${name}: ${error.message}\n`)
    return 2
  }
}
