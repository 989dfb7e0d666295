// PUT /v1/catalog/register and /deregister, and the RequireNodeRegistration switch:
// with it on, a session is created only on a node in the catalog, bound to checks that
// node has and that are not critical, refused otherwise with Consul's 500 and its text
// (agent/consul/state/session.go). Off by default: any node name is accepted.

import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { type DevConsul, startDevConsul } from "../../src/devconsul/server.ts"

describe("dev-consul's catalog and sessions on unregistered nodes", () => {
  let dev: DevConsul
  before(async () => {
    dev = await startDevConsul({ host: "127.0.0.1", port: 0, nodeName: "agent-1" })
  })
  after(() => dev.close())

  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${dev.url}${path}`, { method: "PUT", body: JSON.stringify(body) })
    return { status: res.status, text: await res.text() }
  }
  const createSession = (body: Record<string, unknown>) => put("/v1/session/create", { TTL: "10s", ...body })
  const requireRegistration = async (on: boolean) => {
    const answer = await put("/v1/dev-consul/settings", { RequireNodeRegistration: on })
    assert.equal((JSON.parse(answer.text) as { RequireNodeRegistration: boolean }).RequireNodeRegistration, on)
  }
  const serfHealth = (status?: string) => ({ CheckID: "serfHealth", Name: "Serf Health Status", Status: status })

  test("off by default: a session on a node nobody registered is created", async () => {
    const answer = await createSession({ Node: "never-registered" })
    assert.equal(answer.status, 200, answer.text)
  })

  test("on: unknown node, missing check and critical check are refused with Consul's texts", async () => {
    await requireRegistration(true)
    try {
      assert.deepEqual(await createSession({ Node: "web-1" }), { status: 500, text: "Missing node registration" })

      assert.deepEqual(await put("/v1/catalog/register", { Node: "web-1", Address: "10.0.0.1" }), {
        status: 200,
        text: "true"
      })
      assert.deepEqual(await createSession({ Node: "web-1" }), {
        status: 500,
        text: "Missing check 'serfHealth' registration"
      })
      // Bound to no check, the registered node is enough.
      assert.equal((await createSession({ Node: "web-1", NodeChecks: [] })).status, 200)

      await put("/v1/catalog/register", { Node: "web-1", Address: "10.0.0.1", Check: serfHealth() })
      assert.deepEqual(await createSession({ Node: "web-1" }), {
        status: 500,
        text: "Check 'serfHealth' is in critical state"
      }, "a check registered without a status starts critical")

      await put("/v1/catalog/register", { Node: "web-1", Address: "10.0.0.1", Checks: [serfHealth("passing")] })
      assert.equal((await createSession({ Node: "WEB-1" })).status, 200, "node names match case-insensitively")
      assert.equal((await createSession({})).status, 200, "the agent's own node is registered with serfHealth")
    } finally {
      await requireRegistration(false)
    }
  })

  test("deregistering a node, or the check a session is bound to, invalidates its sessions", async () => {
    await put("/v1/catalog/register", { Node: "web-2", Address: "10.0.0.2", Check: serfHealth("passing") })
    const bound = JSON.parse((await createSession({ Node: "web-2" })).text) as { ID: string }
    const unbound = JSON.parse((await createSession({ Node: "web-2", NodeChecks: [] })).text) as { ID: string }
    const alive = async (id: string) =>
      ((await (await fetch(`${dev.url}/v1/session/info/${id}`)).json()) as unknown[]).length === 1

    assert.deepEqual(await put("/v1/catalog/deregister", { Node: "web-2", CheckID: "serfHealth" }), {
      status: 200,
      text: "true"
    })
    assert.equal(await alive(bound.ID), false, "the session bound to serfHealth went with it")
    assert.equal(await alive(unbound.ID), true, "a session bound to no check stays")

    await put("/v1/catalog/deregister", { Node: "web-2" })
    assert.equal(await alive(unbound.ID), false, "every session of a deregistered node goes")
  })

  test("register and deregister need a node; register an address", async () => {
    assert.deepEqual(await put("/v1/catalog/register", { Address: "10.0.0.3" }), {
      status: 500,
      text: "Must provide node"
    })
    assert.deepEqual(await put("/v1/catalog/register", { Node: "web-3" }), {
      status: 500,
      text: "Must provide address if SkipNodeUpdate is not set"
    })
    assert.equal((await fetch(`${dev.url}/v1/catalog/register`)).status, 405)
  })
})
