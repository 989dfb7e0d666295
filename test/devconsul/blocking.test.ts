// Blocking queries (`index` + `wait`) through the npm `consul` client.

import Consul from "consul"
import assert from "node:assert/strict"
import type { IncomingMessage } from "node:http"
import { describe, test } from "node:test"
import { randomPrefix } from "../support/consul.ts"
import { hostPort } from "../support/consul.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { consulIndex, consulSuite, withResponse } from "./harness.ts"
import type { KvItem } from "./harness.ts"

describe("dev-consul blocking queries", { concurrency: true }, () => {
  const suite = consulSuite()

  test("a blocking get wakes when the key is set", async () => {
    const key = `${randomPrefix()}/desired`
    await suite.c.kv.set(key, "v1")
    const [res0] = (await suite.c.kv.get({ key, ...withResponse() })) as [IncomingMessage, KvItem]
    const index = consulIndex(res0)

    const started = Date.now()
    const waiting = suite.c.kv.get({ key, index: String(index), wait: "20s", ...withResponse() }) as Promise<
      [IncomingMessage, KvItem]
    >
    await sleep(200)
    await suite.c.kv.set(key, "v2")
    const [res, entry] = await waiting
    assert.equal(entry.Value, "v2")
    assert.ok(consulIndex(res) > index)
    assert.ok(Date.now() - started < 10_000, "woken by the write, not by the wait running out")
  })

  test("a blocking recurse wakes on a write under the prefix", async () => {
    const p = randomPrefix()
    await suite.c.kv.set(`${p}/a`, "1")
    const [res0] = (await suite.c.kv.get({ key: `${p}/`, recurse: true, ...withResponse() })) as [IncomingMessage]
    const waiting = suite.c.kv.get({
      key: `${p}/`,
      recurse: true,
      index: String(consulIndex(res0)),
      wait: "20s",
      ...withResponse()
    }) as Promise<[IncomingMessage, KvItem[]]>
    await sleep(200)
    await suite.c.kv.set(`${p}/b`, "2")
    const [, entries] = await waiting
    assert.deepEqual(
      entries.map((e) => e.Key),
      [`${p}/a`, `${p}/b`]
    )
  })

  test("a blocking get on a missing key wakes when it is created", async () => {
    const key = `${randomPrefix()}/later`
    const [res0] = (await suite.c.kv.get({ key, ...withResponse() })) as [IncomingMessage]
    assert.equal(res0.statusCode, 404)
    const waiting = suite.c.kv.get({ key, index: String(consulIndex(res0)), wait: "20s" }) as Promise<
      KvItem | undefined
    >
    await sleep(200)
    await suite.c.kv.set(key, "here")
    // A missing key may wake on any KV write, so loop as a real watcher does.
    const entry = (await waiting) ??
      (await eventually("the created key", async () => (await suite.c.kv.get(key)) as KvItem | undefined, 10_000))
    assert.equal(entry?.Value, "here")
  })

  test("a blocking get on a missing key keeps blocking through writes nearby, and wakes when it is created", async () => {
    // Consul's blocking query (agent/blockingquery, since 1.12) runs the read again at each
    // write near the key; a key still missing, as it was, is no change, so it keeps waiting.
    // Only the first run answers at once, when the table moved past the index sent.
    const p = randomPrefix()
    const key = `${p}/lock`
    await suite.c.kv.set(`${p}/config`, "c")
    const [res0] = (await suite.c.kv.get({ key, ...withResponse() })) as [IncomingMessage]
    assert.equal(res0.statusCode, 404)
    // Writes elsewhere (other tests) may answer a first run at once: ask again, as a
    // watcher does, until a read is held.
    let index = consulIndex(res0)
    let answered: number | undefined
    let waiting: Promise<[IncomingMessage, KvItem | undefined]>
    for (;;) {
      const started = Date.now()
      answered = undefined
      waiting = (suite.c.kv.get({ key, index: String(index), wait: "20s", ...withResponse() }) as Promise<
        [IncomingMessage, KvItem | undefined]
      >).then((r) => {
        answered = Date.now() - started
        return r
      })
      await sleep(200)
      if (answered === undefined) break
      const [early] = await waiting
      assert.equal(early.statusCode, 404)
      index = consulIndex(early)
    }
    for (let i = 0; i < 5; i++) await suite.c.kv.set(`${p}/status/node-${i}`, "s")
    await sleep(500)
    assert.equal(answered, undefined, "a write near a missing key answered its blocking read")
    await suite.c.kv.set(key, "locked")
    const [res, entry] = await waiting
    assert.equal(entry?.Value, "locked")
    assert.ok(consulIndex(res) > index)

    // The first run: an index the table has moved past answers at once, still missing.
    const gone = `${p}/deploy`
    const [stale] = (await suite.c.kv.get({ key: gone, ...withResponse() })) as [IncomingMessage]
    await suite.c.kv.set(`${p}/status/node-9`, "s")
    const t0 = Date.now()
    const [again] =
      (await suite.c.kv.get({ key: gone, index: String(consulIndex(stale)), wait: "20s", ...withResponse() })) as [
        IncomingMessage
      ]
    assert.equal(again.statusCode, 404)
    assert.ok(consulIndex(again) > consulIndex(stale))
    assert.ok(Date.now() - t0 < 5_000, "the first run answered at once")
  })

  test("the wait runs out with the same index when nothing changes", async () => {
    const key = `${randomPrefix()}/quiet`
    await suite.c.kv.set(key, "v")
    const [res0] = (await suite.c.kv.get({ key, ...withResponse() })) as [IncomingMessage]
    const index = consulIndex(res0)
    const started = Date.now()
    const [res] = (await suite.c.kv.get({ key, index: String(index), wait: "1s", ...withResponse() })) as [
      IncomingMessage
    ]
    const took = Date.now() - started
    assert.equal(consulIndex(res), index)
    // 1s plus at most 1/16 jitter, and some slack for a loaded machine.
    assert.ok(took >= 900 && took < 5_000, `took ${took} ms`)
  })

  test("consul.watch sees each change of a key", async (t) => {
    const key = `${randomPrefix()}/watched`
    await suite.c.kv.set(key, "v1")
    const raw = new Consul(hostPort(suite.consul.addr))
    const watch = raw.watch({ method: raw.kv.get, options: { key, wait: "20s" } as unknown as Record<string, string> })
    t.after(() => {
      watch.end()
      raw.destroy()
    })
    const seen: string[] = []
    const errors: unknown[] = []
    watch.on("error", (e: unknown) => errors.push(e))
    const reached = (value: string) =>
      new Promise<void>((resolve) =>
        watch.on("change", (data: { Value?: string } | undefined) => {
          if (data?.Value !== undefined && seen[seen.length - 1] !== data.Value) seen.push(data.Value)
          if (data?.Value === value) resolve()
        })
      )
    await reached("v1")
    const v2 = reached("v2")
    await suite.c.kv.set(key, "v2")
    await v2
    const v3 = reached("v3")
    await suite.c.kv.set(key, "v3")
    await v3
    assert.deepEqual(seen, ["v1", "v2", "v3"])
    assert.deepEqual(errors, [])
  })

  test("an index never goes backwards after a delete under the prefix", async () => {
    const p = randomPrefix()
    await suite.c.kv.set(`${p}/a`, "1")
    await suite.c.kv.set(`${p}/b`, "2")
    const [res1] = (await suite.c.kv.keys({ key: `${p}/`, ...withResponse() })) as unknown as [IncomingMessage]
    await suite.c.kv.del(`${p}/b`)
    const [res2] = (await suite.c.kv.keys({ key: `${p}/`, ...withResponse() })) as unknown as [IncomingMessage]
    assert.ok(consulIndex(res2) > consulIndex(res1), "the tombstone carries the prefix index forward")
  })
})
