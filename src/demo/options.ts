/**
 * `sacar demo`'s command line and the environment it honours. Kept apart from the
 * walk-through so the rules (which Consul, which prefix, which folder) are tested on
 * their own.
 */
import { resolve } from "node:path"
import { parseCommand, UsageError } from "../cli/args.ts"
import { type Env, optionalSetting } from "../common/settings.ts"

export const DEMO_HELP = `usage: sacar demo [--once] [--keep-running] [--dir DIR]

Everything on one machine: a Consul (the embedded dev-consul, or the one at
CONSUL_HTTP_ADDR), a controller and three reconcilers (demo-1, demo-2, demo-3) with
their own roots. It packs examples/shop offline, registers the app, creates a
release and shows each node preparing it, deploys it and shows \`current\` switching
node by node, then prints what to try next.

options:
  --once           non-interactive: plain lines even on a terminal, walk one release
                   to live on all three nodes and exit 0 (1 with the reason if it
                   fails or takes longer than 120 s)
  --keep-running   after the walk-through keep everything up (and keep showing
                   progress) until Ctrl-C, to try sacar status, deploy, rollback ...
  --dir DIR        the demo folder (default .demo): the artifact, the node roots
                   nodes/demo-1..3 and every process's log in logs/. Wiped at start;
                   a folder the demo did not create is refused unless it is empty.

environment:
  CONSUL_HTTP_ADDR   use this Consul instead of starting the embedded dev-consul
  SACAR_PREFIX       KV prefix (default: sacar on the embedded Consul, sacar-demo
                     on an external one, so a real cluster's sacar/ is never touched)
  SACAR_PYTHON       the reconcilers' default interpreter (default python3)

Ctrl-C at any moment stops every process the demo started and exits.

examples:
  sacar demo
  sacar demo --keep-running
  CONSUL_HTTP_ADDR=127.0.0.1:8500 sacar demo --once
`

/** How long --once (and the default walk-through) may take before it gives up. */
export const WALKTHROUGH_BOUND_MS = 120_000

export interface DemoOptions {
  readonly once: boolean
  readonly keepRunning: boolean
  /** Absolute path of the demo folder. */
  readonly dir: string
}

/** undefined when --help was printed. Throws UsageError (exit 2) on a mistake. */
export const parseDemoArgs = (argv: string[], cwd: string): DemoOptions | undefined => {
  const parsed = parseCommand(
    argv,
    { once: { type: "boolean" }, "keep-running": { type: "boolean" }, dir: { type: "string" } },
    DEMO_HELP
  )
  if (parsed === undefined) return undefined
  if (parsed.positionals.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`)
  const once = parsed.values.once === true
  const keepRunning = parsed.values["keep-running"] === true
  if (once && keepRunning) throw new UsageError("--once and --keep-running contradict each other; pick one")
  const dirText = parsed.values.dir ?? ".demo"
  if (dirText.trim() === "") throw new UsageError("--dir needs a folder")
  const dir = resolve(cwd, dirText)
  if (dir === resolve("/") || dir === resolve(cwd))
    throw new UsageError(`--dir ${dirText} would wipe ${dir}; give the demo a folder of its own`)
  return { once, keepRunning, dir }
}

export const DEMO_PREFIX_EXTERNAL = "sacar-demo"

export type ConsulChoice =
  | { readonly kind: "embedded"; readonly prefix: string }
  | { readonly kind: "external"; readonly address: string; readonly prefix: string }

/**
 * The embedded dev-consul unless CONSUL_HTTP_ADDR is set. On someone's real Consul the
 * default prefix is sacar-demo: the demo clears its prefix at start, and must never
 * do that to a cluster's sacar/.
 */
export const chooseConsul = (env: Env): ConsulChoice => {
  const address = optionalSetting(env, "CONSUL_HTTP_ADDR")
  const prefix = optionalSetting(env, "SACAR_PREFIX")?.replace(/\/+$/, "")
  if (address === undefined) return { kind: "embedded", prefix: prefix || "sacar" }
  return { kind: "external", address, prefix: prefix || DEMO_PREFIX_EXTERNAL }
}
