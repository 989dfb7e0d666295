// Nodes without reconcilers, for controller tests and the GitHub-requests benchmark:
// each registers `<prefix>/_nodes/<node>` under its own Consul session (Behavior
// delete, renewed) and writes its NodeStatus documents as a reconciler would. Plain
// HTTP against Consul's API (./kv.ts), no Sacar code, so what the controller reads was
// written independently of it.

import { sleep } from "./eventually.ts"
import { Kv } from "./kv.ts"

export interface SimulatedNode {
  readonly node: string
  readonly sessionId: string
  /** Writes this node's NodeStatus for `app` (status key), merged over what it wrote before. */
  status(app: string, patch: StatusPatch): Promise<void>
  /** Stops renewing and destroys the session: the registration disappears. */
  stop(): Promise<void>
}

export interface ReleasePatch {
  readonly phase: string
  readonly message?: string
  readonly steps?: Readonly<Record<string, { readonly ms: number }>>
  readonly log?: string
  /** When the attempt ended, as a reconciler writes it (ISO 8601). */
  readonly finishedAt?: string
}

export interface StatusPatch {
  readonly releases?: Readonly<Record<string, ReleasePatch>>
  readonly current?: string | null
  readonly previous?: string | null
  readonly deploy?: {
    readonly generation: number
    readonly sha: string
    readonly phase: string
    readonly message?: string
  } | null
}

export const registerNode = async (
  consul: string,
  prefix: string,
  node: string,
  ttl = "10s"
): Promise<SimulatedNode> => {
  const kv = new Kv(consul, prefix)
  const sessionId = await kv.createSession({ Name: `sim ${node}`, TTL: ttl, Behavior: "delete", LockDelay: "0s" })
  const registration = {
    node,
    version: "0.1.0-sim",
    startedAt: new Date().toISOString(),
    root: "/sim",
    pythons: ["3.12"]
  }
  if (!(await kv.put(`_nodes/${node}`, registration, { acquire: sessionId }))) {
    throw new Error(`could not register ${node}: Consul refused the acquire`)
  }
  const renew = setInterval(() => void kv.renewSession(sessionId).catch(() => {}), 3_000)
  renew.unref()
  const docs = new Map<string, Record<string, unknown>>()
  return {
    node,
    sessionId,
    status: async (app, patch) => {
      const before = docs.get(app) ?? { node, releases: {}, current: null, deploy: null }
      const releases = { ...(before["releases"] as Record<string, unknown>) }
      for (const [sha, r] of Object.entries(patch.releases ?? {})) {
        releases[sha] = { attempt: 1, steps: {}, ...(releases[sha] as object | undefined), ...r }
      }
      const doc = {
        ...before,
        ...(patch.current !== undefined ? { current: patch.current } : {}),
        ...(patch.previous !== undefined ? { previous: patch.previous } : {}),
        ...(patch.deploy !== undefined ? { deploy: patch.deploy } : {}),
        releases,
        updatedAt: new Date().toISOString()
      }
      docs.set(app, doc)
      await kv.put(`${app}/status/${node}`, doc)
    },
    stop: async () => {
      clearInterval(renew)
      await kv.destroySession(sessionId).catch(() => {})
    }
  }
}

/** The steps of a release, as a reconciler reports them once each is done. */
export const STEPS = ["download", "extract", "lock", "venv", "install", "prepare"] as const

/** Walks one node through every release phase to ready, `stepMs` apart. */
export const prepareOn = async (node: SimulatedNode, app: string, sha: string, stepMs = 0): Promise<void> => {
  const steps: Record<string, { ms: number }> = {}
  await node.status(app, { releases: { [sha]: { phase: "pending" } } })
  for (const step of STEPS) {
    await node.status(app, { releases: { [sha]: { phase: step, steps: { ...steps } } } })
    if (stepMs > 0) await sleep(stepMs)
    steps[step] = { ms: 100 + Math.floor(Math.random() * 900) }
  }
  await node.status(app, { releases: { [sha]: { phase: "ready", message: "prepared", steps } } })
}
