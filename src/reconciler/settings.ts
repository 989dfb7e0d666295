/**
 * The reconciler's settings (docs/contract.md §2). Each one is checked here, at
 * start-up, so a mistake stops the process with one line naming the variable.
 */
import { hostname } from "node:os"
import { isAbsolute } from "node:path"
import { intSetting, optionalSetting, prefixSetting, SettingError } from "../common/settings.ts"
import type { Env } from "../common/settings.ts"
import { isNodeName } from "../spec/names.ts"
import { resolveRunAs } from "./app-user.ts"
import type { RunAs } from "./app-user.ts"

export interface ReconcilerSettings {
  readonly node: string
  readonly root: string
  readonly concurrency: number
  readonly python: string
  readonly prefix: string
  /** SACAR_RUN_AS: who runs the app's scripts and pip; undefined for the reconciler's own user. */
  readonly runAs?: RunAs | undefined
  /** SACAR_CONSUL_NODE: the Consul node its sessions are created on (default: `node`). */
  readonly consulNode: string
}

/** The host name up to its first dot when the whole name is not a valid node name. */
const defaultNode = (): string => {
  const host = hostname()
  if (isNodeName(host)) return host
  const short = host.split(".")[0] ?? ""
  return short
}

export const reconcilerSettings = (env: Env): ReconcilerSettings => {
  const node = optionalSetting(env, "SACAR_NODE") ?? defaultNode()
  if (!isNodeName(node)) {
    throw new SettingError({
      variable: "SACAR_NODE",
      message:
        `SACAR_NODE must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-' starting with a letter or digit, got ${
          JSON.stringify(node)
        }`
    })
  }
  const root = optionalSetting(env, "SACAR_ROOT") ?? "/var/lib/sacar"
  if (!isAbsolute(root)) {
    throw new SettingError({
      variable: "SACAR_ROOT",
      message: `SACAR_ROOT must be an absolute path, got ${JSON.stringify(root)}`
    })
  }
  const concurrency = intSetting(env, "SACAR_CONCURRENCY", 2, 1)
  const python = optionalSetting(env, "SACAR_PYTHON") ?? "python3"
  const prefix = prefixSetting(env)
  const runAsValue = optionalSetting(env, "SACAR_RUN_AS")
  const runAs = runAsValue === undefined
    ? undefined
    : resolveRunAs(runAsValue, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 })
  // Nomad's node name and the Consul agent's need not be the same; sessions must be on the latter.
  const consulNode = optionalSetting(env, "SACAR_CONSUL_NODE") ?? node
  if (!isNodeName(consulNode)) {
    throw new SettingError({
      variable: "SACAR_CONSUL_NODE",
      message: `SACAR_CONSUL_NODE must be a Consul node name, got ${JSON.stringify(consulNode)}`
    })
  }
  return { node, consulNode, root: root.replace(/(.)\/+$/, "$1"), concurrency, python, prefix, runAs }
}
