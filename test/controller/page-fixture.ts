// KV for the status page's tests, written straight over Consul's HTTP API: an app in
// the middle of a deploy (one node live, one deploying, one whose prepare failed with
// a log), and an app that is locked and pinned with an operator's text that must be
// escaped.
import { Kv } from "../support/kv.ts"
import { putKv, randomSha } from "./harness.ts"

export interface PageFixture {
  readonly newSha: string
  readonly oldSha: string
  readonly generation: number
  /** The last line of web-3's failed prepare log; the page shows it. */
  readonly logLine: string
}

const at = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString()

/** A live registration is held by the node's session (docs/contract.md §3), as the reconciler writes it. */
const register = async (consul: string, prefix: string, node: string): Promise<void> => {
  const kv = new Kv(consul, prefix)
  const session = await kv.createSession({ Name: `page ${node}`, Behavior: "delete", LockDelay: "0s" })
  const registration = { node, version: "0.1.0", startedAt: at(600), root: "/srv" }
  if (!(await kv.put(`_nodes/${node}`, registration, { acquire: session }))) throw new Error(`registering ${node}`)
}

export const nodeStatus = (
  node: string,
  releases: Record<string, unknown>,
  current: string | null,
  deploy: unknown
) => ({ node, updatedAt: at(1), releases, current, deploy })

export const seedPage = async (consul: string, prefix: string): Promise<PageFixture> => {
  const newSha = randomSha()
  const oldSha = randomSha()
  const logLine = "ERROR: could not find a version that satisfies flask==99"
  for (const node of ["web-1", "web-2", "web-3"]) {
    await register(consul, prefix, node)
  }
  await putKv(consul, `${prefix}/shop/config`, { repo: "acme/shop", nodes: ["web-*"], maxParallel: 1 })
  await putKv(consul, `${prefix}/shop/releases/${oldSha}`, { createdAt: at(3600) })
  await putKv(consul, `${prefix}/shop/releases/${newSha}`, { createdAt: at(120) })
  await putKv(consul, `${prefix}/shop/deploy`, { sha: newSha, requestedBy: "ana", requestedAt: at(30) })
  const generation = (await new Kv(consul, prefix).raw("shop/deploy"))!.modifyIndex
  const ready = {
    phase: "ready",
    startedAt: at(100),
    finishedAt: at(60),
    steps: { download: { ms: 1200 }, install: { ms: 8300 }, prepare: { ms: 2100 } }
  }
  const old = { phase: "ready", steps: { download: { ms: 900 } } }
  await putKv(
    consul,
    `${prefix}/shop/status/web-1`,
    nodeStatus("web-1", { [newSha]: ready, [oldSha]: old }, newSha, {
      generation,
      sha: newSha,
      phase: "live",
      finishedAt: at(10)
    })
  )
  await putKv(
    consul,
    `${prefix}/shop/status/web-2`,
    nodeStatus("web-2", { [newSha]: ready, [oldSha]: old }, oldSha, {
      generation,
      sha: newSha,
      phase: "deploying",
      startedAt: at(5)
    })
  )
  await putKv(
    consul,
    `${prefix}/shop/status/web-3`,
    nodeStatus(
      "web-3",
      {
        [newSha]: {
          phase: "failed",
          message: "bin/prepare failed (exit code 3)",
          startedAt: at(90),
          finishedAt: at(80),
          steps: { download: { ms: 1100 }, install: { ms: 7000 } },
          log: `Collecting flask==99\n${logLine}\n`
        },
        [oldSha]: old
      },
      oldSha,
      null
    )
  )
  await putKv(consul, `${prefix}/api/config`, { nodes: ["web-1"] })
  await putKv(consul, `${prefix}/api/lock`, { by: "bo", reason: "<script>alert(1)</script> freeze", at: at(60) })
  await putKv(consul, `${prefix}/api/pin`, { sha: oldSha, by: "bo", reason: "rolled back", at: at(60) })
  return { newSha, oldSha, generation, logLine }
}
