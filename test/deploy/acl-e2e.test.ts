// The policies in deploy/acl are enough and no more: the controller and two
// reconcilers run under tokens that carry exactly the rendered policies, against a
// Consul with ACLs on, default deny and the key-list policy; an operator's token writes
// the app's config and the DeploySpec. A whole release and deploy reaches live on both
// nodes. Then each token is tried on what it must not do.
//
// Needs ACLs as set up here, so it runs on dev-consul only (a real Consul at
// CONSUL_HTTP_ADDR has its own ACL setup, which this test cannot assume).
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import { test } from "node:test"
import { promisify } from "node:util"
import { controllerEnv, startController } from "../controller/harness.ts"
import { randomSha, releaseEntries, SETTLE_MS, startReconciler, tempDir } from "../reconciler/harness.ts"
import { registerConsulNodes, startConsul } from "../support/consul.ts"
import { eventually } from "../support/eventually.ts"
import { Kv } from "../support/kv.ts"
import { runSacar } from "../support/sacar.ts"
import { writeTarball } from "../support/tarballs.ts"
import { deployDir } from "./hcl.ts"

const run = promisify(execFile)
const MANAGEMENT = "management-token-for-tests"
const NOTIFY = "notify-token-for-tests"
const AGENT_NODE = "infra-1"

/**
 * A Consul HTTP call with a token; the status and the body's text. Raw on purpose: the
 * tests check what Consul answers each token (403s), which the KV client would throw.
 */
const call = async (addr: string, token: string, method: string, path: string, body?: string) => {
  const res = await fetch(`${addr}${path}`, {
    method,
    headers: { "X-Consul-Token": token },
    ...(body !== undefined ? { body } : {})
  })
  return { status: res.status, text: await res.text() }
}

const render = async (prefix: string, role: string, ...args: string[]) =>
  (await run(join(deployDir, "acl", "render-policy.sh"), [role, ...args], {
    env: { PATH: process.env.PATH, SACAR_PREFIX: prefix }
  })).stdout

/** Creates the policy and a token carrying only it, as `consul acl policy/token create` do. */
const tokenFor = async (addr: string, name: string, rules: string): Promise<string> => {
  const policy = await call(addr, MANAGEMENT, "PUT", "/v1/acl/policy", JSON.stringify({ Name: name, Rules: rules }))
  assert.equal(policy.status, 200, policy.text)
  const token = await call(
    addr,
    MANAGEMENT,
    "PUT",
    "/v1/acl/token",
    JSON.stringify({ Description: name, Policies: [{ Name: name }] })
  )
  assert.equal(token.status, 200, token.text)
  return (JSON.parse(token.text) as { SecretID: string }).SecretID
}

test(
  "controller, reconcilers and an operator under exactly the deploy/acl policies: release and deploy go live; each token is refused what it must not do",
  {
    timeout: 300_000
  },
  async (t) => {
    const consul = await startConsul({
      nodeName: AGENT_NODE,
      acl: { defaultPolicy: "deny", initialManagementToken: MANAGEMENT, enableKeyListPolicy: true },
      // As in production: sessions only on nodes in the catalog (each node's agent registers it).
      production: { requireNodeRegistration: true }
    })
    t.after(() => consul.close())
    if (consul.real) return t.skip("needs dev-consul's ACL setup; a real Consul keeps its own")
    const addr = consul.addr
    const prefix = `t-${randomBytes(6).toString("hex")}`
    const nodes = ["web-1", "web-2"]
    await registerConsulNodes(addr, nodes, MANAGEMENT)

    const tokens = {
      controller: await tokenFor(
        addr,
        "sacar-controller",
        await render(prefix, "controller", "-n", AGENT_NODE, "shop")
      ),
      operator: await tokenFor(addr, "sacar-operator", await render(prefix, "operator", "shop")),
      "web-1": await tokenFor(
        addr,
        "sacar-reconciler-web-1",
        await render(prefix, "reconciler", "-n", "web-1", "shop")
      ),
      "web-2": await tokenFor(addr, "sacar-reconciler-web-2", await render(prefix, "reconciler", "-n", "web-2", "shop"))
    }
    // Default deny: no token, no access.
    assert.equal((await call(addr, "", "GET", `/v1/kv/${prefix}/shop/config`)).status, 403)

    const dir = await tempDir(t, "acl")
    const artifact = await writeTarball(dir, "shop.tgz", releaseEntries({ deploy: "echo deployed" }))
    const operatorEnv = { CONSUL_HTTP_ADDR: addr, CONSUL_HTTP_TOKEN: tokens.operator, SACAR_PREFIX: prefix }
    const set = await runSacar(["app", "set", "shop", "--artifact", artifact.url, "--nodes", "web-*"], operatorEnv)
    assert.equal(set.code, 0, set.stderr + set.stdout)

    const reconcilers = nodes.map((node) =>
      startReconciler(t, {
        addr,
        prefix,
        node,
        root: join(dir, node),
        env: { CONSUL_HTTP_TOKEN: tokens[node as "web-1" | "web-2"] }
      })
    )
    const controller = await startController(
      controllerEnv({ consul: addr, prefix, notifyToken: NOTIFY, extra: { CONSUL_HTTP_TOKEN: tokens.controller } })
    )
    t.after(() => controller.stop())
    const dump = () =>
      [...reconcilers.map((r) => `--- ${r.node}\n${r.output()}`), `--- controller\n${controller.logs()}`].join("\n")

    const status = (node: string) => new Kv(addr, prefix, MANAGEMENT).status("shop", node)

    // The controller writes the ReleaseSpec (notify), the nodes prepare it.
    const sha = randomSha()
    const notified = await fetch(`${controller.url}/v1/apps/shop/releases`, {
      method: "POST",
      headers: { Authorization: `Bearer ${NOTIFY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ sha, artifact: artifact.url, sha256: artifact.sha256 })
    })
    assert.equal(notified.status, 201, await notified.text())
    for (const node of nodes) {
      const phase = await eventually(
        `${node} to prepare ${sha.slice(0, 7)}`,
        async () => {
          const r = (await status(node))?.releases?.[sha]
          return r?.phase === "ready" || r?.phase === "failed" ? r.phase as string : undefined
        },
        SETTLE_MS,
        dump
      )
      assert.equal(phase, "ready", dump())
    }

    // The operator deploys; both nodes go live (pre-deploy lock, semaphore, status, all under their tokens).
    const deployed = await runSacar(["deploy", "shop", sha], operatorEnv)
    assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout)
    for (const node of nodes) {
      const phase = await eventually(
        `${node} to deploy ${sha.slice(0, 7)}`,
        async () => {
          const s = await status(node)
          return s?.deploy?.phase === "live" || s?.deploy?.phase === "failed" ? s.deploy.phase as string : undefined
        },
        SETTLE_MS,
        dump
      )
      assert.equal(phase, "live", dump())
      assert.equal((await status(node))?.current, sha)
    }

    // What each token cannot do. A denied write answers 403 and changes nothing.
    const denied = async (who: keyof typeof tokens, method: string, path: string, body = "{}") => {
      const res = await call(addr, tokens[who], method, path, body)
      assert.equal(res.status, 403, `${who} ${method} ${path}: ${res.status} ${res.text}`)
      assert.match(res.text, /Permission denied/)
    }
    const kv = (rest: string) => `/v1/kv/${prefix}/${rest}`
    for (
      const rest of [
        "shop/status/web-2",
        "_nodes/web-2",
        `shop/releases/${randomSha()}`,
        "shop/deploy",
        "shop/config",
        "shop/lock",
        "shop/pin",
        "_controller/leader"
      ]
    ) {
      await denied("web-1", "PUT", kv(rest))
    }
    for (
      const rest of ["shop/status/web-1", "_nodes/web-1", "shop/config", "shop/lock", "shop/pin", "shop/locks/deploy/x"]
    ) {
      await denied("controller", "PUT", kv(rest))
    }
    for (const rest of ["shop/status/web-1", "_nodes/web-1", "_controller/leader", `shop/github/${sha}`]) {
      await denied("operator", "PUT", kv(rest))
    }
    // Nobody but the node itself may end its registration: its session is on its node.
    const registration = JSON.parse((await call(addr, MANAGEMENT, "GET", kv("_nodes/web-1"))).text) as Array<
      { Session: string }
    >
    const sessionId = registration[0]!.Session
    await denied("controller", "PUT", `/v1/session/destroy/${sessionId}`, "")
    await denied("web-2", "PUT", `/v1/session/destroy/${sessionId}`, "")
    await denied("web-2", "PUT", "/v1/session/create", JSON.stringify({ Name: "x", Node: "web-1", TTL: "10s" }))
    assert.equal((await call(addr, MANAGEMENT, "GET", kv("_nodes/web-1"))).status, 200, "web-1 is still registered")
    // A recursive delete needs write on everything under the prefix.
    await denied("controller", "DELETE", `${kv("shop/")}?recurse`, "")
  }
)
