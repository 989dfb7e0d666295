/**
 * `sacar reconciler`: the per-machine component (a Nomad system job). All
 * configuration comes from the environment (docs/contract.md §2); the only option is
 * --help.
 */
import { setFlagsFromString } from "node:v8"
import { runComponent } from "../common/main.ts"
import { reconcilerProgram } from "../reconciler/main.ts"
import { parseCommand, UsageError, withUsage } from "./args.ts"

const HELP = `Usage: sacar reconciler

Runs the reconciler of this machine. It has no inbound HTTP: it watches Consul KV
(blocking queries) and writes only its own status, <prefix>/<app>/status/<node>.

It registers <prefix>/_nodes/<node> (held by a session that dies with it), serves
every app whose AppConfig "nodes" globs match the node, prepares each ReleaseSpec
(download, extract, venv, pip install from the tarball's wheels, bin/prepare) newest
first, removes releases no longer wanted (keeping current and the one before it), and
deploys each new DeploySpec generation: the run-once bin/pre-deploy, a slot of the
app's maxParallel semaphore, bin/deploy, then an atomic switch of <root>/<app>/current.
SIGTERM interrupts work in flight, kills its processes and deregisters; a restart
picks up where it stopped (bin/deploy of an unfinished deploy runs again).

Environment:
  SACAR_NODE            this node's name (default: the host name)
  SACAR_ROOT            where releases live (default /var/lib/sacar)
  SACAR_CONCURRENCY     releases prepared at once on this node (default 2)
  SACAR_PYTHON          interpreter when a release has no python-version (default python3)
  SACAR_PREFIX          Consul KV prefix (default sacar)
  CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN(_FILE), CONSUL_CACERT, ...   as for the Consul CLI
  GOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST            for gs:// artifacts
  SACAR_LOG_LEVEL (debug|info|warn|error), SACAR_LOG_FORMAT (json|pretty)

A missing or malformed setting stops the reconciler at start with one line naming
the variable, and exit code 2.

Example:
  SACAR_NODE=web-1 SACAR_ROOT=/srv/sacar CONSUL_HTTP_ADDR=127.0.0.1:8500 sacar reconciler
`

export async function main(argv: string[]): Promise<number> {
  return withUsage("reconciler", async () => {
    const parsed = parseCommand(argv, {}, HELP)
    if (parsed === undefined) return 0
    if (parsed.positionals.length > 0)
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`)
    // A reconciler runs on every machine of the fleet and allocates little: V8's default
    // young generation (16 MiB semi-spaces) is about 20 MiB of RSS it never needs.
    setFlagsFromString("--max-semi-space-size=1")
    return runComponent(reconcilerProgram(process.env))
  })
}
