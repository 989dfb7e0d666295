// A release and a deploy while Consul rate-limits (429) and then loses its leader (503)
// for a share of requests: every node ends live and nothing is marked failed. Real
// `sacar reconciler` processes against dev-consul's fault switch; against a real Consul
// (CONSUL_HTTP_ADDR) this skips, since faults cannot be injected there.
import assert from "node:assert/strict"
import { join } from "node:path"
import { test } from "node:test"
import { randomPrefix, startConsul } from "../support/consul.ts"
import { eventually } from "../support/eventually.ts"
import { Kv } from "../support/kv.ts"
import { writeTarball } from "../support/tarballs.ts"
import { appConfig, randomSha, releaseEntries, SETTLE_MS, startReconciler, tempDir } from "./harness.ts"

const settings = async (addr: string, body: Record<string, unknown>) => {
  const res = await fetch(`${addr}/v1/dev-consul/settings`, { method: "PUT", body: JSON.stringify(body) })
  const text = await res.text()
  assert.equal(res.status, 200, text)
  return JSON.parse(text) as { Faulted: number }
}

/** A write from the test itself, retried through the faults as any client would. */
const putThrough = (kv: Kv, rest: string, value: object) =>
  eventually(`PUT ${rest}`, async () => {
    await kv.put(rest, value)
    return true
  }, 30_000)

test("429 and 503 bursts during a release and a deploy: every node ends live, nothing failed", {
  timeout: 300_000
}, async (t) => {
  const consul = await startConsul()
  t.after(() => consul.close())
  if (consul.real) return t.skip("needs dev-consul's fault switch")
  const addr = consul.addr
  const kv = new Kv(addr, randomPrefix())
  const dir = await tempDir(t, "faults")
  const artifact = await writeTarball(
    dir,
    "shop.tgz",
    releaseEntries({ preDeploy: "echo migrated", deploy: "echo ok" })
  )
  await kv.put("shop/config", appConfig(artifact.url, { maxParallel: 1 }))
  const nodes = ["web-1", "web-2"].map((node) =>
    startReconciler(t, { addr, prefix: kv.prefix, node, root: join(dir, node) })
  )
  const dump = () => nodes.map((n) => `--- ${n.node}\n${n.output()}`).join("\n")
  await eventually(
    "both nodes registered",
    async () => (await kv.keys("_nodes/")).length === 2 || undefined,
    60_000,
    dump
  )

  // Release under rate limiting.
  const sha = randomSha()
  const before = (await settings(addr, { FaultStatus: 429, FaultShare: 0.25 })).Faulted
  await putThrough(kv, `shop/releases/${sha}`, { artifact: artifact.url, sha256: artifact.sha256 })
  for (const n of nodes) {
    const phase = await eventually(
      `${n.node} to prepare`,
      async () => {
        const r = (await kv.status("shop", n.node))?.releases?.[sha]
        return r?.phase === "ready" || r?.phase === "failed" ? r.phase as string : undefined
      },
      SETTLE_MS,
      dump
    )
    assert.equal(phase, "ready", dump())
  }
  const afterRelease = (await settings(addr, {})).Faulted
  assert.ok(afterRelease > before, "requests were refused with 429 during the release")

  // Deploy while a share of requests gets 429, then deploy again (a new generation)
  // while a share gets 503.
  const deployThrough = async (status: 429 | 503) => {
    const from = (await settings(addr, { FaultStatus: status })).Faulted
    await putThrough(kv, "shop/deploy", { sha, requestedBy: "test", requestedAt: new Date().toISOString() })
    const generation = await eventually(
      "the DeploySpec's index",
      async () => (await kv.raw("shop/deploy"))?.modifyIndex
    )
    for (const n of nodes) {
      const phase = await eventually(
        `${n.node} to deploy generation ${generation} through ${status}s`,
        async () => {
          const d = (await kv.status("shop", n.node))?.deploy
          if (d?.generation !== generation) return undefined
          return d.phase === "live" || d.phase === "failed" || d.phase === "halted" ? d.phase as string : undefined
        },
        SETTLE_MS,
        dump
      )
      assert.equal(phase, "live", dump())
    }
    assert.ok((await settings(addr, {})).Faulted > from, `requests were refused with ${status} during the deploy`)
  }
  await deployThrough(429)
  await deployThrough(503)
  await settings(addr, { FaultShare: 0 })
  for (const n of nodes) {
    const s = await kv.status("shop", n.node)
    assert.equal(s?.current, sha)
    assert.equal(s?.releases?.[sha]?.phase, "ready", `${n.node}: the release never failed`)
    assert.equal(s?.releases?.[sha]?.attempt ?? 1, 1, `${n.node}: prepared in one attempt`)
  }
})
