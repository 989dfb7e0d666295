/**
 * What Consul asks of the node, read from one snapshot of the prefix: per app, the
 * AppConfig (the last one that decoded, so a typo never tears releases down), every
 * ReleaseSpec with its ModifyIndex, and the DeploySpec with its ModifyIndex as the
 * deploy generation. Values that do not decode become messages naming the key, never
 * exceptions. Pure, apart from remembering the last good AppConfig per app.
 */
import * as Result from "effect/Result"
import type { KvEntry } from "../consul/Consul.ts"
import { decodeDocument } from "../spec/decode.ts"
import { AppConfig, DeploySpec, LockDoc, NodeStatus, ReleaseSpec } from "../spec/documents.ts"
import { type Keys, misnamedRelease } from "../spec/keys.ts"
import type { AppDesired, AppLock, WantedDeploy, WantedRelease } from "./plan.ts"

/** The app's lock key as the plan sees it; an empty value (a deleted-then-touched key) is no lock. */
export const readLock = (entry: KvEntry): AppLock | undefined => {
  if (entry.value === null || entry.value.trim() === "") return undefined
  const decoded = decodeDocument(LockDoc, "LockDoc", entry.key, entry.value)
  return Result.isSuccess(decoded) ? { doc: decoded.success } : { unreadable: decoded.failure.message }
}

export interface Snapshot {
  readonly apps: ReadonlyMap<string, AppDesired>
  /** This node's own status per app as last written (when it decodes): where a restart resumes. */
  readonly ownStatus: ReadonlyMap<string, NodeStatus>
}

interface AppEntries {
  config?: KvEntry
  deploy?: KvEntry
  lock?: KvEntry
  releases: KvEntry[]
  /** Keys under releases/ that are not a sha: nothing prepares them, so they are reported. */
  misnamed: string[]
  ownStatus?: KvEntry
}

/**
 * `lastGood` is updated in place: an AppConfig that decodes replaces it, a deleted
 * config forgets it, one that does not decode leaves it as it was.
 */
export const readSnapshot = (
  keys: Keys,
  node: string,
  entries: ReadonlyArray<KvEntry>,
  lastGood: Map<string, AppConfig>
): Snapshot => {
  const byApp = new Map<string, AppEntries>()
  const entriesOf = (app: string) => {
    let found = byApp.get(app)
    if (found === undefined) {
      found = { releases: [], misnamed: [] }
      byApp.set(app, found)
    }
    return found
  }
  for (const entry of entries) {
    const parsed = keys.parse(entry.key)
    switch (parsed.kind) {
      case "config":
        entriesOf(parsed.app).config = entry
        break
      case "deploy":
        entriesOf(parsed.app).deploy = entry
        break
      case "lock":
        entriesOf(parsed.app).lock = entry
        break
      case "release":
        entriesOf(parsed.app).releases.push(entry)
        break
      case "status":
        if (parsed.node === node) entriesOf(parsed.app).ownStatus = entry
        break
      case "other": {
        const misnamed = misnamedRelease(keys, entry.key)
        if (misnamed !== undefined) entriesOf(misnamed.app).misnamed.push(misnamed.message)
        break
      }
    }
  }
  for (const app of lastGood.keys()) {
    if (byApp.get(app)?.config === undefined) lastGood.delete(app)
  }

  const apps = new Map<string, AppDesired>()
  const ownStatus = new Map<string, NodeStatus>()
  for (const [app, found] of byApp) {
    if (found.ownStatus !== undefined) {
      const decoded = decodeDocument(NodeStatus, "NodeStatus", found.ownStatus.key, found.ownStatus.value)
      if (Result.isSuccess(decoded)) ownStatus.set(app, decoded.success)
    }
    if (found.config === undefined) continue

    const errors: string[] = []
    const config = decodeDocument(AppConfig, "AppConfig", found.config.key, found.config.value)
    if (Result.isSuccess(config)) lastGood.set(app, config.success)
    else errors.push(
        lastGood.has(app)
          ? `${config.failure.message} (still acting on the last AppConfig that decoded)`
          : config.failure.message
      )

    errors.push(...found.misnamed)
    const releases = new Map<string, WantedRelease>()
    for (const entry of found.releases) {
      const parsed = keys.parse(entry.key)
      if (parsed.kind !== "release") continue
      const spec = decodeDocument(ReleaseSpec, "ReleaseSpec", entry.key, entry.value)
      releases.set(
        parsed.sha,
        Result.isSuccess(spec)
          ? { sha: parsed.sha, specIndex: entry.modifyIndex, spec: spec.success }
          : { sha: parsed.sha, specIndex: entry.modifyIndex, spec: undefined, specError: spec.failure.message }
      )
    }

    let deploy: WantedDeploy | undefined
    if (found.deploy !== undefined) {
      const spec = decodeDocument(DeploySpec, "DeploySpec", found.deploy.key, found.deploy.value)
      if (Result.isSuccess(spec)) {
        deploy = {
          generation: found.deploy.modifyIndex,
          sha: spec.success.sha,
          ...(spec.success.force === true ? { force: true } : {})
        }
      } else errors.push(spec.failure.message)
    }

    const lock = found.lock === undefined ? undefined : readLock(found.lock)
    apps.set(app, {
      app,
      config: lastGood.get(app),
      configPresent: true,
      errors,
      releases,
      deploy,
      ...(lock === undefined ? {} : { lock })
    })
  }
  return { apps, ownStatus }
}
