import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { join } from "node:path"
import { test } from "node:test"
import { promisify } from "node:util"
import { type Body, deployDir, labelled, parseHcl } from "./hcl.ts"

const run = promisify(execFile)
const aclDir = join(deployDir, "acl")

type Access = "deny" | "read" | "write"
const RANK: Record<Access, number> = { deny: 0, read: 1, write: 2 }

/**
 * Consul's decision for one key (default deny): an exact `key` rule wins, otherwise
 * the longest matching `key_prefix`. The same for `session`/`session_prefix` over node
 * names.
 */
function decide(policy: Body, kind: "key" | "session", name: string): Access {
  const exact = labelled(policy, kind).find(([label]) => label === name)
  if (exact !== undefined) return exact[1].policy as Access
  let best: [string, Access] | undefined
  for (const [prefix, body] of labelled(policy, `${kind}_prefix`)) {
    if (name.startsWith(prefix) && (best === undefined || prefix.length > best[0].length))
      best = [prefix, body.policy as Access]
  }
  return best?.[1] ?? "deny"
}

const can = (policy: Body, kind: "key" | "session", name: string, access: Access) =>
  RANK[decide(policy, kind, name)] >= RANK[access]

async function rendered(node: string, ...apps: string[]): Promise<Body> {
  const { stdout } = await run(join(aclDir, "render-reconciler-policy.sh"), [node, ...apps], {
    env: { PATH: process.env.PATH }
  })
  return parseHcl(join(aclDir, `${node}.rendered.hcl`), stdout)
}

test("reconciler policy template parses and keeps its placeholders to the rules", async () => {
  const template = await parseHcl(join(aclDir, "reconciler.policy.hcl"))
  const labels = ["key", "key_prefix", "session", "session_prefix"].flatMap((k) =>
    labelled(template, k).map(([l]) => l)
  )
  assert.ok(labels.includes("sacar/<app>/status/<node>"), labels.join(", "))
  assert.ok(labels.includes("sacar/_nodes/<node>"))
})

test("a rendered reconciler policy writes only its node's keys and its apps' locks", async () => {
  const p = await rendered("web-1", "shop", "blog")
  for (
    const key of [
      "sacar/shop/status/web-1",
      "sacar/blog/status/web-1",
      "sacar/_nodes/web-1",
      "sacar/shop/locks/deploy/.lock",
      "sacar/blog/locks/pre-deploy/42"
    ]
  ) {
    assert.ok(can(p, "key", key, "write"), `should write ${key}`)
  }
  for (
    const key of [
      "sacar/shop/status/web-10",
      "sacar/shop/status/web-2",
      "sacar/shop/status/",
      "sacar/_nodes/web-10",
      "sacar/_nodes/web-2",
      "sacar/shop/config",
      "sacar/shop/deploy",
      "sacar/shop/releases/0123456789012345678901234567890123456789",
      "sacar/shop/pin",
      "sacar/shop/lock",
      "sacar/shop/github/0123456789012345678901234567890123456789",
      "sacar/_controller/leader",
      "sacar/other/status/web-1",
      "other/thing"
    ]
  ) {
    assert.ok(!can(p, "key", key, "write"), `must not write ${key}`)
  }
  for (const key of ["sacar/shop/config", "sacar/shop/deploy", "sacar/_nodes/web-2", "sacar/shop/status/web-2"]) {
    assert.ok(can(p, "key", key, "read"), `should read ${key}`)
  }
  assert.ok(!can(p, "key", "vault/secret", "read"), "nothing outside sacar/")
  assert.ok(can(p, "session", "web-1", "write"))
  assert.ok(!can(p, "session", "web-10", "write"))
  assert.ok(!can(p, "session", "web-2", "write"))
  // no write grant on a prefix that covers the whole tree or another node's keys
  for (const [prefix, body] of labelled(p, "key_prefix")) {
    if (body.policy === "write") assert.match(prefix, /^sacar\/[a-z0-9-]+\/locks\/$/, `write on prefix ${prefix}`)
  }
  assert.deepEqual(labelled(p, "session_prefix"), [])
})

test("rendering honours SACAR_PREFIX and refuses bad names", async () => {
  const { stdout } = await run(join(aclDir, "render-reconciler-policy.sh"), ["web-1", "shop"], {
    env: { PATH: process.env.PATH, SACAR_PREFIX: "staging/sacar" }
  })
  const p = await parseHcl(join(aclDir, "prefixed.hcl"), stdout)
  assert.ok(can(p, "key", "staging/sacar/shop/status/web-1", "write"))
  assert.ok(!can(p, "key", "sacar/shop/status/web-1", "read"))
  await assert.rejects(run(join(aclDir, "render-reconciler-policy.sh"), ["web 1", "shop"]), /invalid node name/)
  await assert.rejects(run(join(aclDir, "render-reconciler-policy.sh"), ["web-1", "Shop"]), /invalid app name/)
  await assert.rejects(run(join(aclDir, "render-reconciler-policy.sh"), ["web-1"]), /usage/)
})

test("controller policy writes desired state under sacar/ and holds sessions, nothing else", async () => {
  const p = await parseHcl(join(aclDir, "controller.policy.hcl"))
  for (
    const key of [
      "sacar/shop/releases/abc",
      "sacar/shop/deploy",
      "sacar/shop/pin",
      "sacar/shop/github/abc",
      "sacar/_controller/leader"
    ]
  ) {
    assert.ok(can(p, "key", key, "write"), key)
  }
  assert.ok(can(p, "key", "sacar/shop/config", "read"))
  assert.ok(can(p, "session", "any-node", "write"))
  assert.ok(!can(p, "key", "vault/secret", "read"))
  assert.deepEqual(
    Object.keys(p).sort(),
    ["key_prefix", "session_prefix"],
    "no node, service, agent, acl or operator rules"
  )
})

test("the operator policy writes desired state, reads nodes and the leader lock, takes no session", async () => {
  const p = await parseHcl(join(aclDir, "operator.policy.hcl"))
  const sha = "a".repeat(40)
  for (const key of ["config", "deploy", "lock", "pin", `releases/${sha}`]) {
    assert.ok(can(p, "key", `sacar/shop/${key}`, "write"), key)
  }
  assert.ok(can(p, "key", "sacar/shop/status/web-1", "read"))
  assert.ok(can(p, "key", "sacar/_nodes/web-1", "read"))
  assert.ok(!can(p, "key", "sacar/_nodes/web-1", "write"))
  assert.ok(!can(p, "key", "sacar/_controller/leader", "write"))
  assert.ok(!can(p, "session", "web-1", "write"))
  assert.ok(!can(p, "key", "other/thing", "read"), "nothing outside sacar/")
})
