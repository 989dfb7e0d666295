/**
 * What the demo tells the operator to try once the release is live: real commands
 * with the real addresses, each doable with the Consul CLI alone as well.
 */
import { isAbsolute, join, relative } from "node:path"
import type { Keys } from "../spec/keys.ts"
import { DEFAULT_PREFIX } from "../spec/keys.ts"
import { shortSha } from "../spec/names.ts"

export interface NextStepsInput {
  readonly app: string
  readonly consul: string
  readonly keys: Keys
  readonly sha: string
  /** A made-up second commit id, for a release of the same tarball. */
  readonly secondSha: string
  readonly artifacts: string
  readonly controllerUrl: string
  readonly logs: string
  readonly nodeRoots: ReadonlyArray<{ readonly node: string; readonly root: string }>
  readonly keepRunning: boolean
  readonly cwd: string
}

/** A path as the operator would type it from where they ran the demo. */
export const shownPath = (path: string, cwd: string): string => {
  const rel = relative(cwd, path)
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path
}

export const nextSteps = (i: NextStepsInput): string => {
  const p = (path: string) => shownPath(path, i.cwd)
  const prefixVar = i.keys.prefix === DEFAULT_PREFIX ? "" : ` SACAR_PREFIX=${i.keys.prefix}`
  const second = i.secondSha
  const lines = [
    i.keepRunning
      ? "Everything stays up until Ctrl-C. In another terminal, try:"
      : "Everything stops now. `npx sacar demo --keep-running` keeps it up; then, in another terminal, try:",
    "",
    `  export CONSUL_HTTP_ADDR=${i.consul}${prefixVar}`,
    `  npx sacar status ${i.app} --watch          # releases x nodes, redrawn as things change`,
    "",
    "  # a second release: the same tarball under another commit id, forced with Consul alone",
    `  cp ${p(join(i.artifacts, `${i.sha}.tgz`))} ${p(join(i.artifacts, `${second}.tgz`))}`,
    `  consul kv put ${i.keys.release(i.app, second)} '{}'     # or: npx sacar release ${i.app} ${second}`,
    `  npx sacar deploy ${i.app} ${second}        # or: consul kv put ${i.keys.deploy(i.app)} '{"sha":"${second}"}'`,
    `  npx sacar rollback ${i.app}                # back to ${
      shortSha(i.sha)
    }, pinned until \`npx sacar unpin ${i.app}\``,
    `  npx sacar lock ${i.app} -m "trying a freeze"   # deploys now refuse without --force; \`npx sacar unlock ${i.app}\``,
    "",
    `  controller:  ${i.controllerUrl}/healthz   ${i.controllerUrl}/readyz   ${i.controllerUrl}/metrics`,
    `  logs:        ${p(i.logs)}/ (controller.log, ${i.nodeRoots.map((n) => `${n.node}.log`).join(", ")}; JSON lines)`,
    `  node roots:  ${i.nodeRoots.map((n) => p(n.root)).join(", ")}   (${i.app}/current -> releases/<sha>)`
  ]
  return lines.join("\n")
}
