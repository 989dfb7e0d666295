/**
 * `sacar controller`: the long-running component that takes GitHub webhooks and CI
 * notifications and (as leader) reports to GitHub. All configuration comes from the
 * environment (docs/contract.md §2); the only options are --help.
 */
import { runComponent } from "../common/main.ts"
import { controllerProgram } from "../controller/main.ts"
import { parseCommand, UsageError, withUsage } from "./args.ts"

const HELP = `Usage: sacar controller

Runs the controller: the HTTP endpoints below, and, on the replica holding the leader
lock (<prefix>/_controller/leader), the reporting of releases and deploys to GitHub.
Several replicas may run; any of them accepts webhooks and notifications, which only
write Consul KV. SIGTERM stops accepting, lets requests in flight finish, and exits 0.

Endpoints:
  POST /github/webhook             GitHub events (X-Hub-Signature-256)
  POST /v1/apps/<app>/releases     artifact ready: {"sha", "artifact"?, "sha256"?, "ref"?}
  GET  /v1/apps, /v1/apps/<app>    status as JSON (Authorization: Bearer <SACAR_READ_TOKEN>)
  GET  /healthz, /readyz, /metrics liveness, readiness (Consul reachable), Prometheus text

Environment:
  SACAR_LISTEN                     host:port to listen on (default 127.0.0.1:8080; port 0 picks one)
  SACAR_PUBLIC_URL                 this controller's public URL, for links in check runs
  SACAR_PREFIX                     Consul KV prefix (default sacar)
  GITHUB_WEBHOOK_SECRET(_FILE)     the webhook's secret; unset: webhooks are off (503)
  SACAR_NOTIFY_TOKEN(_FILE)        bearer token of POST /v1/apps/<app>/releases; unset: off (503)
  SACAR_READ_TOKEN(_FILE)          bearer token of GET /v1/apps; unset: off (503)
  GITHUB_WEBHOOK_SECRET_PREVIOUS(_FILE)  a second accepted secret while rotating the webhook's
  GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY(_FILE)   GitHub App mode: check runs with buttons
  GITHUB_TOKEN                     token mode: commit statuses, no buttons
  GITHUB_API_URL                   default https://api.github.com (GitHub Enterprise: https://HOST/api/v3)
  CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN(_FILE), CONSUL_CACERT, ...   as for the Consul CLI
  SACAR_LOG_LEVEL (debug|info|warn|error), SACAR_LOG_FORMAT (json|pretty)

A missing or malformed setting stops the controller at start with one line naming
the variable, and exit code 2.

Examples:
  SACAR_LISTEN=0.0.0.0:8080 GITHUB_WEBHOOK_SECRET_FILE=/secrets/webhook \\
  SACAR_NOTIFY_TOKEN_FILE=/secrets/notify GITHUB_APP_ID=12345 \\
  GITHUB_APP_PRIVATE_KEY_FILE=/secrets/app.pem sacar controller
`

export async function main(argv: string[]): Promise<number> {
  return withUsage("controller", async () => {
    const parsed = parseCommand(argv, {}, HELP)
    if (parsed === undefined) return 0
    if (parsed.positionals.length > 0)
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`)
    return runComponent(controllerProgram(process.env))
  })
}
