// GitHub requests per release: 3 and 30 nodes over a 30 s spread, and 100 nodes over a
// 5-minute spread (a long prepare: check-run updates widen with the release's age, see
// src/controller/report/pacing.ts).
//
// For each node count: one app, one commit on its deploy branch, and simulated nodes
// (test/support/simulated-nodes.ts: a registration under a Consul session and the
// NodeStatus writes a reconciler makes, pending → download → … → prepare → ready).
// Each node registers at a random moment in the first fifth of the spread and is ready
// at a moment spread evenly over the rest, all within SPREAD seconds of the ReleaseSpec
// being written, so node changes keep arriving for the whole spread. The reporter (leader election + report loop, the
// production code, production coalescing of 2 s and GitHub client tuning) runs
// in-process against dev-consul and the fake GitHub in App mode; the fake counts every
// request it receives until the check run is green and nothing more arrives.
//
//   node_modules/.bin/node bench/github-requests.ts             the three rows; appends to docs/benchmarks.md
//   node_modules/.bin/node bench/github-requests.ts --nodes=100 only the 100-node, 5-minute row
//   node_modules/.bin/node bench/github-requests.ts --quick     6 s spreads, nothing written (a smoke run)
//
// Target: at most 20 requests per release, whatever the node count and the prepare's duration.

import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { fileURLToPath } from "node:url"
import { randomPrefix, startConsul } from "../test/support/consul.ts"
import { sleep } from "../test/support/eventually.ts"
import { startFakeGitHub } from "../test/support/fake-github/index.ts"
import { appKeyPair, startReporter } from "../test/support/reporter.ts"
import { registerNode, STEPS } from "../test/support/simulated-nodes.ts"
import type { SimulatedNode } from "../test/support/simulated-nodes.ts"

const QUICK = process.argv.includes("--quick")
const ONLY = process.argv.find((a) => a.startsWith("--nodes="))?.slice("--nodes=".length)
/** Node count and the spread of their prepares. */
const RUNS: ReadonlyArray<{ readonly nodes: number; readonly spreadMs: number }> = [
  { nodes: 3, spreadMs: 30_000 },
  { nodes: 30, spreadMs: 30_000 },
  { nodes: 100, spreadMs: 300_000 }
]
  .filter((r) => ONLY === undefined || String(r.nodes) === ONLY)
  .map((r) => (QUICK ? { ...r, spreadMs: 6_000 } : r))
const QUIET_MS = 5_000
const TARGET = 20
const APP_ID = "4242"
const REPO = "acme/shop"

interface Row {
  readonly nodes: number
  readonly spreadMs: number
  readonly total: number
  readonly creates: number
  readonly updates: number
  readonly tokens: number
  readonly other: number
  readonly seconds: number
}

const put = async (consul: string, key: string, value: unknown) => {
  const res = await fetch(`${consul}/v1/kv/${key}`, { method: "PUT", body: JSON.stringify(value) })
  if (!res.ok) throw new Error(`PUT ${key}: ${res.status}`)
}

const randomSha = () => Array.from({ length: 40 }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("")

/** One node: registers at `startMs`, walks every phase, is ready at `endMs` (from t0). */
const simulate = async (
  consul: string,
  prefix: string,
  name: string,
  sha: string,
  t0: number,
  startMs: number,
  endMs: number
): Promise<SimulatedNode> => {
  await sleep(Math.max(0, t0 + startMs - Date.now()))
  const node = await registerNode(consul, prefix, name)
  const phases = ["pending", ...STEPS]
  const gap = (endMs - startMs) / (phases.length + 1)
  const steps: Record<string, { ms: number }> = {}
  for (const [i, phase] of phases.entries()) {
    await node.status("shop", { releases: { [sha]: { phase, steps: { ...steps } } } })
    if (i > 0) steps[phases[i]!] = { ms: Math.round(gap) }
    await sleep(Math.max(0, t0 + startMs + gap * (i + 1) - Date.now()))
  }
  steps["prepare"] = { ms: Math.round(gap) }
  await sleep(Math.max(0, t0 + endMs - Date.now()))
  await node.status("shop", { releases: { [sha]: { phase: "ready", message: "prepared", steps } } })
  return node
}

const runOne = async (
  consulAddr: string,
  nodeCount: number,
  spreadMs: number,
  keys: ReturnType<typeof appKeyPair>
): Promise<Row> => {
  const github = await startFakeGitHub({ app: { appId: APP_ID, publicKey: keys.publicKeyPem } })
  const prefix = randomPrefix()
  const sha = randomSha()
  await put(consulAddr, `${prefix}/shop/config`, {
    repo: REPO,
    branch: "main",
    artifact: "file:///srv/{app}/{sha}.tgz",
    nodes: ["web-*"]
  })
  await put(consulAddr, `${prefix}/shop/github/${sha}`, {
    repo: REPO,
    sha,
    branch: "main",
    installationId: 1,
    createdAt: new Date().toISOString()
  })
  const reporter = startReporter({
    consul: consulAddr,
    prefix,
    github: { url: github.url, appId: APP_ID, privateKeyPem: keys.privateKeyPem }
  })
  const nodes: SimulatedNode[] = []
  try {
    // The push's check run exists before the release starts, as in production.
    while (!github.checkRuns().some((r) => r.head_sha === sha)) await sleep(100)
    const before = github.requests.length
    const t0 = Date.now()
    await put(consulAddr, `${prefix}/shop/releases/${sha}`, { createdAt: new Date().toISOString() })
    const plans = Array.from({ length: nodeCount }, (_, i) => {
      // Registrations in the first fifth of the window, ready times spread evenly over the
      // rest up to its end: every node is expected before the first is ready, as when a
      // release lands on a settled cluster (a node joining later reopens the run).
      const start = Math.round(Math.random() * 0.2 * spreadMs)
      const end = Math.round(0.25 * spreadMs + ((i + 1) / nodeCount) * 0.75 * spreadMs)
      return { name: `web-${String(i + 1).padStart(3, "0")}`, start, end }
    })
    nodes.push(...await Promise.all(plans.map((p) => simulate(consulAddr, prefix, p.name, sha, t0, p.start, p.end))))
    // Green, then quiet: nothing left to send.
    let lastCount = -1
    let quietSince = Date.now()
    while (true) {
      const run = github.checkRuns().filter((r) => r.head_sha === sha).at(-1)
      if (github.requests.length !== lastCount) {
        lastCount = github.requests.length
        quietSince = Date.now()
      }
      if (run?.conclusion === "success" && Date.now() - quietSince >= QUIET_MS) break
      await sleep(200)
    }
    const seconds = (Date.now() - t0) / 1000
    const during = github.requests.slice(before)
    if (github.violations.length > 0)
      throw new Error(`the fake recorded OpenAPI violations: ${JSON.stringify(github.violations)}`)
    const run = github.checkRuns().filter((r) => r.head_sha === sha).at(-1)!
    if (run.output.title !== `Ready to deploy: ${nodeCount} of ${nodeCount} nodes ready`)
      throw new Error(`unexpected final title ${run.output.title}`)
    // The create happened before t0 (the push); count it, it belongs to this release's check run.
    const creates = github.requests.filter((r) => r.operationId === "checks/create").length
    const updates = during.filter((r) => r.operationId === "checks/update").length
    const tokens = github.requests.filter((r) => r.operationId === "apps/create-installation-access-token").length
    const other = during.length - updates -
      during.filter((r) =>
        r.operationId === "apps/create-installation-access-token" || r.operationId === "checks/create"
      ).length
    return {
      nodes: nodeCount,
      spreadMs: spreadMs,
      total: creates + updates + tokens + other,
      creates,
      updates,
      tokens,
      other,
      seconds
    }
  } finally {
    await reporter.stop()
    await Promise.all(nodes.map((n) => n.stop()))
    await github.close()
  }
}

const main = async () => {
  const consul = await startConsul()
  const keys = appKeyPair()
  const rows: Row[] = []
  try {
    for (const r of RUNS) {
      process.stderr.write(`github-requests: ${r.nodes} nodes over ${r.spreadMs / 1000} s …\n`)
      rows.push(await runOne(consul.addr, r.nodes, r.spreadMs, keys))
    }
  } finally {
    await consul.close()
  }
  const header =
    "| nodes | prepare spread | GitHub requests per release | check-run creates | check-run updates | installation tokens | other | seconds to quiet |"
  const table = [
    header,
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.nodes} | ${r.spreadMs / 1000} s | ${r.total} | ${r.creates} | ${r.updates} | ${r.tokens} | ${r.other} | ${
        r.seconds.toFixed(1)
      } |`
    )
  ].join("\n")
  const worst = Math.max(...rows.map((r) => r.total))
  const verdict = `most requests for one release: ${worst} (target ≤ ${TARGET}) — ${
    worst <= TARGET ? "target met" : "TARGET MISSED"
  }`
  process.stdout.write(`${table}\n\n${verdict}\n`)
  if (QUICK) {
    process.stderr.write("github-requests: --quick (compressed spread), nothing written\n")
    return
  }
  const file = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
  const section = [
    "## github-requests",
    "",
    `\`node_modules/.bin/node bench/github-requests.ts\`, ${
      new Date().toISOString().slice(0, 16)
    }Z, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"}).`,
    "One release per row; simulated nodes register in the first fifth of the row's spread and write NodeStatus (8 writes each, one per phase), ready times spread evenly up to the end of the spread;",
    "the reporter (production coalescing 2 s widening with the release's age, production GitHub client tuning) against dev-consul and the fake GitHub (App mode), counted until the check run is green and no request arrives for 5 s.",
    "The check run is created on the push, before the release; it is counted here.",
    "",
    table,
    "",
    verdict,
    ""
  ].join("\n")
  if (!existsSync(file)) writeFileSync(file, `# Benchmarks\n\n${section}`)
  else {
    const old = readFileSync(file, "utf8")
    appendFileSync(file, `${old.endsWith("\n") ? "" : "\n"}\n${section}`)
  }
  process.stderr.write(`github-requests: figures appended to ${file}\n`)
}

await main()
