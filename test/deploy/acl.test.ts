import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { join } from "node:path"
import { test } from "node:test"
import { promisify } from "node:util"
import { type Body, deployDir, labelled, parseHcl } from "./hcl.ts"

const run = promisify(execFile)
const aclDir = join(deployDir, "acl")

type Access = "deny" | "read" | "list" | "write"
const RANK: Record<Access, number> = { deny: 0, read: 1, list: 2, write: 3 }

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

const render = (args: string[], env: Record<string, string> = {}) =>
  run(join(aclDir, "render-policy.sh"), args, { env: { PATH: process.env.PATH ?? "", ...env } })

async function rendered(role: string, ...args: string[]): Promise<Body> {
  const { stdout } = await render([role, ...args])
  return parseHcl(join(aclDir, `${role}.rendered.hcl`), stdout)
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
  const p = await rendered("reconciler", "-n", "web-1", "shop", "blog")
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
  // With acl.enable_key_list_policy the reconciler's recursive reads need list.
  assert.ok(can(p, "key", "sacar/", "list"))
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
  const { stdout } = await render(["reconciler", "-n", "web-1", "shop"], { SACAR_PREFIX: "staging/sacar" })
  const p = await parseHcl(join(aclDir, "prefixed.hcl"), stdout)
  assert.ok(can(p, "key", "staging/sacar/shop/status/web-1", "write"))
  assert.ok(!can(p, "key", "sacar/shop/status/web-1", "read"))
  await assert.rejects(render(["reconciler", "-n", "web 1", "shop"]), /invalid node name/)
  await assert.rejects(render(["reconciler", "-n", "web-1", "Shop"]), /invalid app name/)
  await assert.rejects(render(["reconciler", "-n", "web-1"]), /usage/)
  await assert.rejects(render(["reconciler", "shop"]), /exactly one -n/)
  await assert.rejects(render(["controller", "shop"]), /-n NODE/)
  await assert.rejects(render(["operator", "-n", "web-1", "shop"]), /takes no -n/)
  await assert.rejects(render(["nomad", "shop"]), /usage/)
})

test("controller policy writes only what the controller owns, and sessions only on its own nodes", async () => {
  const p = await rendered("controller", "-n", "infra-1", "-n", "infra-2", "shop")
  for (
    const key of ["sacar/shop/releases/abc", "sacar/shop/deploy", "sacar/shop/github/abc", "sacar/_controller/leader"]
  ) {
    assert.ok(can(p, "key", key, "write"), key)
  }
  for (
    const key of [
      "sacar/shop/config",
      "sacar/shop/lock",
      "sacar/shop/pin",
      "sacar/shop/status/web-1",
      "sacar/_nodes/web-1",
      "sacar/shop/locks/deploy/.lock",
      "sacar/blog/releases/abc"
    ]
  ) {
    assert.ok(!can(p, "key", key, "write"), `must not write ${key}`)
    if (key.startsWith("sacar/")) assert.ok(can(p, "key", key, "read"), `reads ${key}`)
  }
  assert.ok(can(p, "session", "infra-1", "write"))
  assert.ok(can(p, "session", "infra-2", "write"))
  assert.ok(!can(p, "session", "web-1", "write"), "cannot destroy a node's registration session")
  assert.deepEqual(labelled(p, "session_prefix"), [])
  assert.ok(!can(p, "key", "vault/secret", "read"))
  assert.deepEqual(
    Object.keys(p).sort(),
    ["key", "key_prefix", "session"],
    "no node, service, agent, acl or operator rules"
  )
})

test("operator policy writes the app's desired state and nothing of the nodes or the controller", async () => {
  const p = await rendered("operator", "shop")
  for (
    const key of [
      "sacar/shop/config",
      "sacar/shop/lock",
      "sacar/shop/pin",
      "sacar/shop/deploy",
      "sacar/shop/releases/abc"
    ]
  ) {
    assert.ok(can(p, "key", key, "write"), key)
  }
  for (
    const key of [
      "sacar/shop/status/web-1",
      "sacar/_nodes/web-1",
      "sacar/_controller/leader",
      "sacar/shop/github/abc",
      "sacar/shop/locks/deploy/.lock",
      "sacar/blog/config"
    ]
  ) {
    assert.ok(!can(p, "key", key, "write"), `must not write ${key}`)
  }
  assert.deepEqual(Object.keys(p).sort(), ["key", "key_prefix"], "no sessions: operators hold no locks")
})
