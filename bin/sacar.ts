#!/usr/bin/env node
/**
 * The `sacar` command. Each subcommand lives in its own module, loaded only when
 * used, so `sacar status` does not pay for the controller's dependencies.
 */
import { enableCompileCache } from "node:module"
import { runCli } from "../src/cli/main.ts"

// Every `sacar` invocation loads the same modules; caching their compiled code
// roughly halves start-up, which CLI users and the test suite both feel.
enableCompileCache()

process.exitCode = await runCli(process.argv.slice(2))
