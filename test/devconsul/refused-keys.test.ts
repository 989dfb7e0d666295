// dev-consul's RefuseKeys switch: the keys Consul 1.21.6+ refuses (a "../" traversal,
// a leading "/", leading or trailing white space) answered 400 on every KV verb and in
// a txn, and accepted as before while the switch is off (its default). A dev-consul
// mode, so this talks to dev-consul directly rather than to startConsul().

import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { type DevConsul, startDevConsul } from "../../src/devconsul/server.ts"

describe("dev-consul refusing the keys Consul 1.21.6+ refuses", () => {
  let dev: DevConsul
  before(async () => {
    dev = await startDevConsul({ host: "127.0.0.1", port: 0 })
  })
  after(() => dev.close())

  const kv = async (method: string, key: string, body?: string) => {
    const res = await fetch(`${dev.url}/v1/kv/${key.split("/").map(encodeURIComponent).join("/")}`, {
      method,
      ...(body !== undefined ? { body } : {}),
      redirect: "manual"
    })
    return { status: res.status, text: await res.text() }
  }
  const refuseKeys = async (on: boolean) => {
    const res = await fetch(`${dev.url}/v1/dev-consul/settings`, {
      method: "PUT",
      body: JSON.stringify({ RefuseKeys: on })
    })
    assert.equal(((await res.json()) as { RefuseKeys: boolean }).RefuseKeys, on)
  }

  const refused = [
    ["a../b", "contains a \"../\" path traversal"],
    [" lead", "has leading or trailing white space"],
    ["trail ", "has leading or trailing white space"],
    ["dir/\tx\t", "has leading or trailing white space"]
  ] as const

  test("off by default: such keys are written, read and deleted like any other", async () => {
    for (const [key] of refused) {
      assert.deepEqual(await kv("PUT", key, "v"), { status: 200, text: "true" }, key)
      const got = await kv("GET", key)
      assert.equal(got.status, 200, key)
      assert.equal((JSON.parse(got.text) as Array<{ Key: string }>)[0]?.Key, key)
      assert.deepEqual(await kv("DELETE", key), { status: 200, text: "true" }, key)
    }
  })

  test("on: PUT, GET and DELETE answer 400 naming the key and why; other keys are untouched", async () => {
    await kv("PUT", "kept/a..b", "v") // ".." without a slash is not a traversal
    await refuseKeys(true)
    try {
      for (const [key, why] of refused) {
        for (const method of ["PUT", "GET", "DELETE"]) {
          const answer = await kv(method, key, method === "PUT" ? "v" : undefined)
          assert.deepEqual(answer, { status: 400, text: `invalid key name ${JSON.stringify(key)}: ${why}` }, method)
        }
      }
      assert.equal((await kv("GET", "kept/a..b")).status, 200)
      assert.deepEqual(await kv("PUT", "kept/b", "v"), { status: 200, text: "true" })
    } finally {
      await refuseKeys(false)
    }
  })

  test("on: a txn naming such a key (a leading \"/\" included) is refused whole with 400", async () => {
    await refuseKeys(true)
    try {
      for (const key of ["/abs", "x/../y", " lead"]) {
        const res = await fetch(`${dev.url}/v1/txn`, {
          method: "PUT",
          body: JSON.stringify([
            { KV: { Verb: "set", Key: "txn/ok", Value: Buffer.from("1").toString("base64") } },
            { KV: { Verb: "get", Key: key } }
          ])
        })
        assert.equal(res.status, 400, key)
        assert.match(await res.text(), new RegExp(`^invalid key name ${JSON.stringify(key)}: `))
      }
      assert.equal((await kv("GET", "txn/ok")).status, 404, "nothing of a refused txn was applied")
    } finally {
      await refuseKeys(false)
    }
  })

  test("a leading \"/\" over HTTP gets Go's 301 to the clean path, on or off", async () => {
    const res = await fetch(`${dev.url}/v1/kv//abs`, { method: "PUT", body: "v", redirect: "manual" })
    assert.equal(res.status, 301)
    assert.equal(res.headers.get("location"), "/v1/kv/abs")
  })
})
