/**
 * Failures that explain themselves: `deploy --wait`, `logs`, `status --watch` and
 * `rollback` driven as users drive them, with the test playing the reconcilers'
 * part by writing their status keys.
 */
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { describe, test } from "node:test"
import type { TestContext } from "node:test"
import { startDevConsul } from "../../src/devconsul/server.ts"
import { eventually } from "../support/eventually.ts"
import { Kv } from "../support/kv.ts"
import { childEnv, runSacar, SACAR_BIN } from "../support/sacar.ts"
import { assertNoStack, consulAddr, kvGet, kvPut, nodeStatus, SHA_A, SHA_B, world } from "./harness.ts"

const OLD = "1ff1a40" + "1".repeat(33)
const NEW = "050cf19" + "2".repeat(33)

/** How long a child `sacar` may take to start and act on a loaded machine. */
const CHILD_MS = 240_000

/** A long-running `sacar` whose output the test reads as it comes. */
const startSacar = (args: string[], env: Record<string, string>) => {
  const child = spawn(process.execPath, [SACAR_BIN, ...args], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] })
  const out = { stdout: "", stderr: "" }
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out.stdout += d))
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out.stderr += d))
  /** Waits until its output matches `re`. */
  const printed = (re: RegExp, ms = CHILD_MS) =>
    eventually(
      `${args.join(" ")} to print ${re}`,
      () => re.test(out.stdout),
      ms,
      () => `stdout: ${out.stdout}\nstderr: ${out.stderr}`
    )
  /** Its exit code and output once it ends by itself. */
  const finished = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once("close", (code) => resolve({ code, ...out }))
  )
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once("close", () => resolve())
      child.kill("SIGINT")
    })
  return { out, printed, stop, finished }
}

/** Held by a session, as a reconciler registers: only such a registration is a live node. */
const register = async (prefix: string, node: string) => {
  const kv = new Kv(consulAddr(), prefix)
  const session = await kv.createSession({ Name: `follow ${node}`, Behavior: "delete", LockDelay: "0s" })
  const registration = { node, version: "0.1.0", startedAt: new Date().toISOString(), root: "/r" }
  assert.equal(await kv.put(`_nodes/${node}`, registration, { acquire: session }), true, `registering ${node}`)
}

/** The generation the child's DeploySpec write got (its ModifyIndex), once it is there. */
const generationOf = (prefix: string): Promise<number> =>
  eventually(
    "the DeploySpec",
    async () => (await new Kv(consulAddr(), prefix).raw("shop/deploy"))?.modifyIndex,
    CHILD_MS
  )

const deployed = (generation: number, sha: string, phase: string, extra: Record<string, unknown> = {}) => ({
  generation,
  sha,
  phase,
  ...extra
})

/**
 * Two registered nodes of shop and `sacar deploy shop <SHA_A> --wait` running, not
 * through runSacar's queue: the follower must run while the test plays the nodes.
 */
const followDeploy = async (t: TestContext) => {
  const { prefix, sacar, env } = world()
  assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
  await register(prefix, "web-1")
  await register(prefix, "web-2")
  const follower = startSacar(["deploy", "shop", SHA_A, "--wait"], env())
  t.after(follower.stop)
  return { prefix, generation: await generationOf(prefix), waiting: follower.finished }
}

describe("failures that explain themselves", { concurrency: true }, () => {
  test("deploy --wait exits 0 once live on every node, following node by node", async (t) => {
    const { prefix, generation, waiting } = await followDeploy(t)
    await kvPut(
      `${prefix}/shop/status/web-1`,
      nodeStatus("web-1", { deploy: deployed(generation, SHA_A, "deploying") })
    )
    await kvPut(
      `${prefix}/shop/status/web-1`,
      nodeStatus("web-1", { current: SHA_A, deploy: deployed(generation, SHA_A, "live") })
    )
    await kvPut(
      `${prefix}/shop/status/web-2`,
      nodeStatus("web-2", { current: SHA_A, deploy: deployed(generation, SHA_A, "live") })
    )
    const r = await waiting
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /web-1: live aaaaaaa/)
    assert.match(r.stdout, /web-2: live aaaaaaa/)
    assert.match(r.stdout, /shop aaaaaaa is live on all 2 nodes/)
  })

  test("deploy --wait exits 1 when a node fails, printing what failed and the end of its output", async (t) => {
    const { prefix, generation, waiting } = await followDeploy(t)
    await kvPut(
      `${prefix}/shop/status/web-2`,
      nodeStatus("web-2", {
        deploy: deployed(generation, SHA_A, "failed", { message: "rollout halted: web-1 failed: bin/deploy failed" })
      })
    )
    await kvPut(
      `${prefix}/shop/status/web-1`,
      nodeStatus("web-1", {
        deploy: deployed(generation, SHA_A, "failed", {
          message: "bin/deploy failed (exit code 3)",
          log: "starting shop\nport 8000 already in use"
        })
      })
    )
    const r = await waiting
    assert.equal(r.code, 1, r.stdout)
    assert.match(
      r.stderr,
      /web-1 failed: bin\/deploy failed \(exit code 3\)\n\s+\| starting shop\n\s+\| port 8000 already in use/
    )
    assertNoStack(r.stderr, "deploy --wait")
  })

  test("deploy takes a unique 7-character prefix; an ambiguous one lists the candidates", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    await kvPut(`${prefix}/shop/releases/${NEW}`, "{}")
    await kvPut(`${prefix}/shop/releases/${OLD}`, "{}")
    await kvPut(`${prefix}/shop/releases/${"050cf1a" + "3".repeat(33)}`, "{}")
    const r = await sacar("deploy", "shop", "050cf19")
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse((await kvGet(`${prefix}/shop/deploy`))!).sha, NEW)
    const amb = await sacar("deploy", "shop", "050cf1")
    assert.equal(amb.code, 2, amb.stderr)
    const amb7 = await sacar("release", "shop", "050cf1a")
    assert.equal(amb7.code, 0, amb7.stderr)
    const ambiguous = await sacar("logs", "shop", "--sha", "050cf")
    assert.equal(ambiguous.code, 2)
    await kvPut(`${prefix}/shop/releases/${"050cf1a" + "4".repeat(33)}`, "{}")
    const two = await sacar("deploy", "shop", "050cf1a")
    assert.equal(two.code, 1)
    assert.match(two.stderr, /050cf1a is ambiguous in shop: 050cf1a3{33}, 050cf1a4{33}/)
    assertNoStack(two.stderr, "deploy with an ambiguous sha")
  })

  test("rollback after a deploy that failed before going live anywhere goes back to what is live", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    assert.equal((await sacar("deploy", "shop", SHA_B)).code, 0)
    const failed = deployed(9, SHA_B, "failed", { message: "pre-deploy failed (exit code 1)" })
    for (const node of ["web-1", "web-2"])
      await kvPut(`${prefix}/shop/status/${node}`, nodeStatus(node, { current: SHA_A, deploy: failed }))
    const rb = await sacar("rollback", "shop")
    assert.equal(rb.code, 0, rb.stderr)
    assert.match(rb.stdout, /from bbbbbbb to aaaaaaa/)
    assert.equal(JSON.parse((await kvGet(`${prefix}/shop/deploy`))!).sha, SHA_A)
  })

  test("logs shows what each node recorded, filtered by node and sha, and follows with -f", async () => {
    const { prefix, sacar, env } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    const failedRelease = {
      phase: "failed",
      message: "install failed (exit code 1)",
      log: "Collecting flask\nERROR: No matching distribution found for flask"
    }
    await kvPut(`${prefix}/shop/status/web-1`, nodeStatus("web-1", { releases: { [SHA_A]: failedRelease } }))
    await kvPut(`${prefix}/shop/status/web-2`, nodeStatus("web-2", { releases: { [SHA_A]: { phase: "ready" } } }))
    const all = await sacar("logs", "shop", "--node", "web-1", "--sha", "aaaaaaa")
    assert.equal(all.code, 0, all.stderr)
    assert.match(
      all.stdout,
      /== web-1 {2}prepare aaaaaaa {2}attempt 1 {2}failed: install failed \(exit code 1\)\n {2}Collecting flask\n {2}ERROR: No matching distribution found for flask/
    )
    assert.doesNotMatch(all.stdout, /web-2/)
    const following = startSacar(["logs", "shop", "-f"], env())
    try {
      await following.printed(/web-2 {2}prepare aaaaaaa {2}attempt 1 {2}ready/)
      await kvPut(
        `${prefix}/shop/status/web-2`,
        nodeStatus("web-2", {
          releases: { [SHA_A]: { phase: "ready" } },
          deploy: deployed(3, SHA_A, "failed", { message: "bin/deploy failed (exit code 3)", log: "boom" })
        })
      )
      await following.printed(
        /web-2 {2}deploy aaaaaaa {2}generation 3 {2}failed: bin\/deploy failed \(exit code 3\)\n {2}boom/
      )
      // Records that did not change are not printed again.
      assert.equal(following.out.stdout.match(/web-1 {2}prepare/g)?.length, 1)
    } finally {
      await following.stop()
    }
  })

  test("status --watch says when it last heard from Consul, and plainly when Consul is gone", async () => {
    const own = await startDevConsul({ host: "127.0.0.1", port: 0 })
    let closed = false
    try {
      await new Kv(own.url, "sacar").put("shop/config", { artifact: "file:///x/{sha}.tgz" })
      const watching = startSacar(["status", "shop", "--watch"], { CONSUL_HTTP_ADDR: own.url })
      try {
        await watching.printed(/as of \d\d:\d\d:\d\d UTC: Consul at http:\/\/127\.0\.0\.1:\d+ answered/)
        await watching.printed(/no releases/)
        await own.close()
        closed = true
        await watching.printed(
          /Consul at http:\/\/127\.0\.0\.1:\d+ is unreachable \(.+\); last heard from it at \d\d:\d\d:\d\d UTC/
        )
        const afterGone = watching.out.stdout.slice(watching.out.stdout.lastIndexOf("is unreachable"))
        assert.doesNotMatch(afterGone.split("---")[0]!, /RELEASE|no releases/, "no stale table under the warning")
        assertNoStack(watching.out.stderr, "status --watch")
      } finally {
        await watching.stop()
      }
    } finally {
      if (!closed) await own.close()
    }
  })

  test("expected failures print one clear line and never a stack trace", async () => {
    const { sacar } = world()
    const gone = { CONSUL_HTTP_ADDR: "127.0.0.1:1" }
    const cases: string[][] = [
      ["status"],
      ["status", "shop"],
      ["deploy", "shop", SHA_A],
      ["logs", "shop"],
      ["rollback", "shop"],
      ["lock", "shop", "-m", "x"],
      ["app", "set", "shop", "--nodes", "web-1"],
      ["release", "shop", SHA_A]
    ]
    await Promise.all(cases.map(async (args) => {
      const r = await runSacar(args, gone)
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`)
      assert.match(r.stderr, /cannot reach Consul at http:\/\/127\.0\.0\.1:1/)
      assertNoStack(r.stderr, args.join(" "))
    }))
    const missing = await sacar("logs", "ghost")
    assert.equal(missing.code, 1)
    assertNoStack(missing.stderr, "logs ghost")
  })
})
