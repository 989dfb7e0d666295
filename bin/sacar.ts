#!/usr/bin/env node
/**
 * The `sacar` command. Each subcommand lives in its own module, loaded only when
 * used, so `sacar status` does not pay for the controller's dependencies.
 */
import { enableCompileCache } from "node:module"
import { commandModule, COMMANDS, usage } from "../src/cli/commands.ts"

// Every `sacar` invocation loads the same modules; caching their compiled code
// roughly halves start-up, which CLI users and the test suite both feel.
enableCompileCache()

const [name, ...rest] = process.argv.slice(2)
if (name === undefined || name === "--help" || name === "-h" || name === "help") {
  process.stdout.write(usage())
  process.exit(name === undefined ? 2 : 0)
}
if (name === "--version" || name === "-v") {
  const { SACAR_VERSION } = await import("../src/common/version.ts")
  process.stdout.write(`${SACAR_VERSION}\n`)
  process.exit(0)
}
const load = commandModule(name)
if (load === undefined) {
  process.stderr.write(
    `sacar: unknown command ${JSON.stringify(name)}; commands: ${COMMANDS.map((c) => c.name).join(", ")}\n`
  )
  process.exit(2)
}
const { main } = await load()
try {
  process.exitCode = await main(rest)
} catch (error) {
  // A setting the command read before anything else (SACAR_PREFIX): one line, exit 2.
  const { SettingError } = await import("../src/common/settings.ts")
  if (!(error instanceof SettingError)) throw error
  process.stderr.write(`sacar ${name}: ${error.message}\n`)
  process.exitCode = 2
}
