// dev-consul's ACLs against Consul's rules: the rule language, longest prefix and
// exact rules, deny winning a merge, default deny, the key-list policy, filtered
// listings, session rules by node, where tokens come from, and the ACL HTTP API.
// Plain HTTP, as `consul acl ...` and any client would speak it.
import assert from "node:assert/strict"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { test } from "node:test"
import type { TestContext } from "node:test"
import { policyAuthorizer } from "../../src/devconsul/acl-authorizer.ts"
import { parseRules, RulesError } from "../../src/devconsul/acl-rules.ts"
import { startConsul } from "../support/consul.ts"

const MGMT = "root-token"

const aclConsul = async (t: TestContext, keyList = true) => {
  const c = await startConsul({
    nodeName: "agent-1",
    acl: { defaultPolicy: "deny", initialManagementToken: MGMT, enableKeyListPolicy: keyList }
  })
  t.after(() => c.close())
  if (c.real) t.skip("needs dev-consul's ACL setup")
  const call = async (
    token: string,
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {}
  ) => {
    const res = await fetch(`${c.addr}${path}`, {
      method,
      headers: token === "" ? headers : { "X-Consul-Token": token, ...headers },
      ...(body !== undefined ? { body } : {})
    })
    return { status: res.status, text: await res.text() }
  }
  const token = async (name: string, rules: string) => {
    const p = await call(MGMT, "PUT", "/v1/acl/policy", JSON.stringify({ Name: name, Rules: rules }))
    assert.equal(p.status, 200, p.text)
    const tk = await call(MGMT, "PUT", "/v1/acl/token", JSON.stringify({ Policies: [{ Name: name }] }))
    assert.equal(tk.status, 200, tk.text)
    return JSON.parse(tk.text) as { SecretID: string; AccessorID: string }
  }
  return { ...c, call, token }
}

test("rules: exact beats prefix, the longest prefix wins, deny wins a merge, no rule means the default", () => {
  const a = parseRules(`
    key_prefix "" { policy = "read" }
    key_prefix "app/" { policy = "write" }
    key_prefix "app/secret/" { policy = "deny" }
    key "app/secret/public" { policy = "read" }
    session "web-1" { policy = "write" }  // trailing comment
    /* block comment */ operator = "read"
  `)
  const b = parseRules(`key_prefix "app/" { policy = "deny" }\nkey "other" { policy = "list" }`)
  const one = policyAuthorizer("x", [a], false)
  assert.ok(one.allowed("key", "app/x", "write"))
  assert.ok(!one.allowed("key", "app/secret/x", "read"))
  assert.ok(one.allowed("key", "app/secret/public", "read"))
  assert.ok(!one.allowed("key", "app/secret/public", "write"))
  assert.ok(one.allowed("key", "zzz", "read") && !one.allowed("key", "zzz", "list"))
  assert.ok(one.allowed("session", "web-1", "write") && !one.allowed("session", "web-10", "read"))
  assert.ok(!one.keyWritePrefix("app/"), "a deny under the prefix stops a recursive delete")
  const merged = policyAuthorizer("x", [a, b], false)
  assert.ok(!merged.allowed("key", "app/x", "read"), "deny wins over write for the same prefix")
  assert.ok(merged.allowed("key", "other", "list"))
  assert.ok(policyAuthorizer("x", [], true).allowed("key", "any", "write"), "default allow")
  assert.throws(() => parseRules(`key "a" { policy = "admin" }`), RulesError)
  assert.throws(() => parseRules(`session "a" { policy = "list" }`), /Invalid session policy/)
  assert.throws(() => parseRules(`bogus "a" { policy = "read" }`), /unknown rule/)
})

test("every policy file in deploy/acl loads through the ACL API as it is (templates included)", async (t) => {
  const { call, real } = await aclConsul(t)
  if (real) return
  for (const role of ["controller", "reconciler", "operator"]) {
    const rules = await readFile(join(import.meta.dirname, "..", "..", "deploy", "acl", `${role}.policy.hcl`), "utf8")
    const res = await call(MGMT, "PUT", "/v1/acl/policy", JSON.stringify({ Name: `t-${role}`, Rules: rules }))
    assert.equal(res.status, 200, `${role}: ${res.text}`)
  }
})

test("default deny: no token and unknown tokens are refused with Consul's texts; the token may come from three places", async (t) => {
  const { call, token, real } = await aclConsul(t)
  if (real) return
  const anon = await call("", "GET", "/v1/kv/app/x")
  assert.equal(anon.status, 403)
  assert.match(
    anon.text,
    /^Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:read' on "app\/x"$/
  )
  assert.deepEqual(await call("nope", "GET", "/v1/kv/app/x"), { status: 403, text: "ACL not found" })
  const t1 = await token("writer", `key_prefix "app/" { policy = "write" }`)
  assert.equal((await call(t1.SecretID, "PUT", "/v1/kv/app/x", "1")).status, 200)
  assert.equal(
    (await call("", "GET", "/v1/kv/app/x", undefined, { Authorization: `Bearer ${t1.SecretID}` })).status,
    200
  )
  assert.equal((await call("", "GET", `/v1/kv/app/x?token=${t1.SecretID}`)).status, 200)
  const self = await call(t1.SecretID, "GET", "/v1/acl/token/self")
  assert.equal(JSON.parse(self.text).AccessorID, t1.AccessorID)
  assert.equal((await call(t1.SecretID, "PUT", "/v1/acl/policy", JSON.stringify({ Name: "x", Rules: "" }))).status, 403)
})

test("key-list policy: recursive reads need list; without it they are filtered to what may be read", async (t) => {
  const { call, token, real } = await aclConsul(t)
  if (real) return
  for (const k of ["app/a", "app/private/b", "app/c"])
    assert.equal((await call(MGMT, "PUT", `/v1/kv/${k}`, k)).status, 200)
  const reader = await token(
    "reader",
    `key_prefix "app/" { policy = "read" }\nkey_prefix "app/private/" { policy = "deny" }`
  )
  const lister = await token(
    "lister",
    `key_prefix "app/" { policy = "list" }\nkey_prefix "app/private/" { policy = "deny" }`
  )
  assert.equal((await call(reader.SecretID, "GET", "/v1/kv/app/a")).status, 200)
  assert.equal((await call(reader.SecretID, "GET", "/v1/kv/app/?recurse")).status, 403, "read is not list")
  assert.equal((await call(reader.SecretID, "GET", "/v1/kv/app/?keys")).status, 403)
  const listed = await call(lister.SecretID, "GET", "/v1/kv/app/?recurse")
  assert.equal(listed.status, 200)
  assert.deepEqual((JSON.parse(listed.text) as Array<{ Key: string }>).map((e) => e.Key), ["app/a", "app/c"])
  const keys = await call(lister.SecretID, "GET", "/v1/kv/app/?keys")
  assert.deepEqual(JSON.parse(keys.text), ["app/a", "app/c"])
  assert.equal((await call(lister.SecretID, "DELETE", "/v1/kv/app/?recurse")).status, 403)
})

test("without the key-list policy a recursive read is only filtered", async (t) => {
  const { call, token, real } = await aclConsul(t, false)
  if (real) return
  for (const k of ["app/a", "app/private/b"]) await call(MGMT, "PUT", `/v1/kv/${k}`, k)
  const reader = await token(
    "reader",
    `key_prefix "app/" { policy = "read" }\nkey_prefix "app/private/" { policy = "deny" }`
  )
  const listed = await call(reader.SecretID, "GET", "/v1/kv/app/?recurse")
  assert.equal(listed.status, 200)
  assert.deepEqual((JSON.parse(listed.text) as Array<{ Key: string }>).map((e) => e.Key), ["app/a"])
})

test("sessions are governed by their node; txn ops are vetted one by one", async (t) => {
  const { call, token, real } = await aclConsul(t)
  if (real) return
  const web1 = await token("web-1", `session "web-1" { policy = "write" }\nkey "lock" { policy = "write" }`)
  const created = await call(web1.SecretID, "PUT", "/v1/session/create", JSON.stringify({ Node: "web-1", TTL: "10s" }))
  assert.equal(created.status, 200, created.text)
  const id = (JSON.parse(created.text) as { ID: string }).ID
  // No Node: the agent's (agent-1), which this token may not write.
  assert.equal((await call(web1.SecretID, "PUT", "/v1/session/create", "{}")).status, 403)
  const other = await token("web-2", `session "web-2" { policy = "write" }`)
  assert.equal((await call(other.SecretID, "PUT", `/v1/session/destroy/${id}`)).status, 403)
  assert.equal((await call(other.SecretID, "PUT", `/v1/session/renew/${id}`)).status, 403)
  assert.deepEqual(JSON.parse((await call(other.SecretID, "GET", `/v1/session/info/${id}`)).text), [], "filtered")
  const txn = await call(
    web1.SecretID,
    "PUT",
    "/v1/txn",
    JSON.stringify([{ KV: { Verb: "lock", Key: "lock", Session: id } }, { KV: { Verb: "set", Key: "elsewhere" } }])
  )
  assert.equal(txn.status, 409)
  const errors = (JSON.parse(txn.text) as { Errors: Array<{ OpIndex: number; What: string }> }).Errors
  assert.deepEqual(errors.map((e) => e.OpIndex), [1])
  assert.match(errors[0]!.What, /Permission denied/)
  assert.equal((await call(web1.SecretID, "PUT", `/v1/kv/lock?acquire=${id}`, "me")).text.trim(), "true")
})

test("the ACL API answers 401 when ACLs are off", async (t) => {
  const c = await startConsul()
  t.after(() => c.close())
  if (c.real) return t.skip("a real Consul may have ACLs on")
  const res = await fetch(`${c.addr}/v1/acl/policies`)
  assert.equal(res.status, 401)
  assert.equal(await res.text(), "ACL support disabled")
})
