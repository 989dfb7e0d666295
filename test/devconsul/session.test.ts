// Sessions and locks through the npm `consul` client. The TTL tests use Consul's
// minimum TTL (10s) and wait up to 2 x TTL plus slack, so they run concurrently.

import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { randomPrefix } from "../support/consul.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { consulSuite } from "./harness.ts"
import type { KvItem } from "./harness.ts"

describe("dev-consul sessions and locks", { concurrency: true }, () => {
  const suite = consulSuite()

  /** Waits until `done` holds for the key's entry (undefined when deleted), and returns the entry. */
  const keyReaches = async (key: string, done: (e: KvItem | undefined) => boolean, withinMs: number) => {
    const seen = await eventually(`${key} to reach the expected state`, async () => {
      const entry = (await suite.c.kv.get(key)) as KvItem | undefined
      return done(entry) ? { entry } : undefined
    }, withinMs)
    return seen.entry
  }

  test("create, info, renew, list and destroy", async () => {
    const p = randomPrefix()
    const { ID } = await suite.c.session.create({ name: `${p}-s`, ttl: "30s", lockdelay: "5s", behavior: "delete" })
    assert.match(ID, /^[0-9a-f-]{36}$/)
    const info = await suite.c.session.info(ID)
    assert.equal(info?.ID, ID)
    assert.equal(info?.Name, `${p}-s`)
    assert.equal(info?.TTL, "30s")
    assert.equal(info?.LockDelay, 5e9)
    assert.equal(info?.Behavior, "delete")
    assert.ok((info?.Node ?? "") !== "")

    const renewed = await suite.c.session.renew(ID)
    assert.equal(renewed[0]?.ID, ID)
    assert.ok((await suite.c.session.list()).some((s) => s.ID === ID))

    await suite.c.session.destroy(ID)
    assert.equal(await suite.c.session.info(ID), undefined)
    await assert.rejects(suite.c.session.renew(ID), (e: Error & { statusCode?: number }) => e.statusCode === 404)
    const res = await fetch(`${suite.consul.addr}/v1/session/renew/${ID}`, { method: "PUT" })
    assert.equal(res.status, 404)
    assert.match(await res.text(), new RegExp(`Session id '${ID}' not found`))
  })

  test("destroying an unknown session is true; info of one is empty", async () => {
    const id = "00000000-0000-0000-0000-000000000000"
    const res = await fetch(`${suite.consul.addr}/v1/session/destroy/${id}`, { method: "PUT" })
    assert.equal(res.status, 200)
    assert.equal(await res.json(), true)
    const info = await fetch(`${suite.consul.addr}/v1/session/info/${id}`)
    assert.deepEqual(await info.json(), [])
    assert.ok(Number(info.headers.get("x-consul-index")) >= 1)
  })

  test("a TTL outside 10s..24h is refused", async () => {
    await assert.rejects(
      suite.c.session.create({ ttl: "5s" }),
      (e: Error & { statusCode?: number }) => e.statusCode === 500
    )
    const res = await fetch(`${suite.consul.addr}/v1/session/create`, {
      method: "PUT",
      body: JSON.stringify({ TTL: "25h" })
    })
    assert.equal(res.status, 500)
    assert.match(await res.text(), /Invalid Session TTL/)
  })

  test("acquire and release keep LockIndex and omit Session when unheld", async () => {
    const key = `${randomPrefix()}/leader`
    const a = (await suite.c.session.create({ lockdelay: "0s" })).ID
    const b = (await suite.c.session.create({ lockdelay: "0s" })).ID
    try {
      assert.equal(await suite.c.kv.set({ key, value: "a", acquire: a }), true)
      let e = (await suite.c.kv.get(key)) as KvItem
      assert.equal(e.Session, a)
      assert.equal(e.LockIndex, 1)
      assert.equal(await suite.c.kv.set({ key, value: "a2", acquire: a }), true, "re-acquiring by the holder succeeds")
      assert.equal(((await suite.c.kv.get(key)) as KvItem).LockIndex, 1)
      assert.notEqual(await suite.c.kv.set({ key, value: "b", acquire: b }), true, "held by another session")
      assert.notEqual(await suite.c.kv.set({ key, value: "b", release: b }), true, "only the holder releases")

      assert.equal(await suite.c.kv.set({ key, value: "released", release: a }), true)
      e = (await suite.c.kv.get(key)) as KvItem
      assert.equal("Session" in e, false)
      assert.equal(e.LockIndex, 1)
      assert.equal(e.Value, "released")

      assert.equal(await suite.c.kv.set({ key, value: "b", acquire: b }), true)
      assert.equal(((await suite.c.kv.get(key)) as KvItem).LockIndex, 2)
    } finally {
      await suite.c.session.destroy(a)
      await suite.c.session.destroy(b)
    }
  })

  test("acquire is refused during lock-delay after the holder's session ends", async () => {
    const key = `${randomPrefix()}/lock`
    const a = (await suite.c.session.create({ lockdelay: "3s" })).ID
    const b = (await suite.c.session.create({ lockdelay: "0s" })).ID
    try {
      assert.equal(await suite.c.kv.set({ key, value: "a", acquire: a }), true)
      await suite.c.session.destroy(a)
      const released = (await suite.c.kv.get(key)) as KvItem
      assert.equal("Session" in released, false, "behavior release keeps the key, unheld")
      assert.equal(released.Value, "a")

      assert.notEqual(await suite.c.kv.set({ key, value: "b", acquire: b }), true, "inside lock-delay")
      await eventually(
        "the acquire to succeed once lock-delay has passed",
        async () => (await suite.c.kv.set({ key, value: "b", acquire: b })) === true,
        10_000
      )
      assert.equal(((await suite.c.kv.get(key)) as KvItem).Session, b)
    } finally {
      await suite.c.session.destroy(b)
    }
  })

  test("TTL expiry releases a lock held by a release session", { timeout: 60_000 }, async () => {
    const key = `${randomPrefix()}/ttl-release`
    const s = (await suite.c.session.create({ ttl: "10s", behavior: "release", lockdelay: "0s" })).ID
    assert.equal(await suite.c.kv.set({ key, value: "held", acquire: s }), true)
    const started = Date.now()
    const entry = await keyReaches(key, (e) => e !== undefined && e.Session === undefined, 35_000)
    assert.equal(entry?.Value, "held", "the value stays")
    assert.ok(Date.now() - started >= 9_000, "not before the TTL")
    assert.equal(await suite.c.session.info(s), undefined)
  })

  test("TTL expiry deletes a key held by a delete session", { timeout: 60_000 }, async () => {
    const key = `${randomPrefix()}/ttl-delete`
    const s = (await suite.c.session.create({ ttl: "10s", behavior: "delete", lockdelay: "0s" })).ID
    assert.equal(await suite.c.kv.set({ key, value: "held", acquire: s }), true)
    await keyReaches(key, (e) => e === undefined, 35_000)
    assert.equal(await suite.c.session.info(s), undefined)
  })

  test("renewing keeps a session alive past its TTL", { timeout: 60_000 }, async () => {
    const s = (await suite.c.session.create({ ttl: "10s" })).ID
    try {
      for (let i = 0; i < 3; i++) {
        await sleep(4_000)
        await suite.c.session.renew(s)
      }
      assert.equal((await suite.c.session.info(s))?.ID, s, "alive after 12s of renewing every 4s")
    } finally {
      await suite.c.session.destroy(s)
    }
  })
})
