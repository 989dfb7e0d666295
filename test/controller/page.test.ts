// The status page over HTTP, against a real controller process and Consul: what the
// server-rendered page shows (as curl sees it), how it is protected (bearer, sign-in
// form and session cookie), the live-update events, and that reading it writes nothing.
import assert from "node:assert/strict"
import { after, before, describe, it } from "node:test"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { sleep } from "../support/eventually.ts"
import { controllerEnv, putKv, type RunningController, snapshot, startController } from "./harness.ts"
import { type PageFixture, seedPage } from "./page-fixture.ts"

const TOKEN = "page-read-token"

describe("controller: the status page", () => {
  let consul: TestConsul
  let controller: RunningController
  let prefix: string
  let fixture: PageFixture

  before(async () => {
    consul = await startConsul()
    prefix = randomPrefix()
    fixture = await seedPage(consul.addr, prefix)
    controller = await startController(controllerEnv({ consul: consul.addr, prefix, readToken: TOKEN }))
  })

  after(async () => {
    await controller?.stop()
    await consul?.close()
  })

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${controller.url}${path}`, { headers, redirect: "manual" })
  const bearer = { authorization: `Bearer ${TOKEN}` }
  const login = (token: string) =>
    fetch(`${controller.url}/page/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token }).toString(),
      redirect: "manual"
    })

  it("asks for the token: 401 with a sign-in form, no state shown", async () => {
    const res = await get("/")
    assert.equal(res.status, 401)
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/)
    const body = await res.text()
    assert.match(body, /<form method="post" action="\/page\/login">/)
    assert.doesNotMatch(body, /shop/)
    assert.equal((await get("/", { authorization: "Bearer wrong" })).status, 401)
    assert.equal((await get("/page/events")).status, 401)
  })

  it("renders the state on the server: releases x nodes, step timings, the deploy node by node, lock, pin, failures with log tails", async () => {
    const res = await get("/", bearer)
    assert.equal(res.status, 200)
    const body = await res.text()
    const newShort = fixture.newSha.slice(0, 7)
    // Both apps, the release grid with its nodes and phases.
    assert.match(body, /id="app-shop"/)
    assert.match(body, /id="app-api"/)
    assert.match(body, new RegExp(`<tr data-sha="${fixture.newSha}">`))
    assert.match(body, /<th[^>]*>web-3<\/th>/)
    assert.match(body, /class="ph-failed" title="download 1\.1s, install 7s — bin\/prepare failed \(exit code 3\)"/)
    assert.match(
      body,
      /class="ph-ready" title="download 1\.2s, install 8\.3s, prepare 2\.1s">ready <small>11\.6s<\/small><br><small class="steps">download 1\.2s, install 8\.3s, prepare 2\.1s<\/small>/
    )
    // The deploy in progress, node by node.
    assert.match(
      body,
      new RegExp(`Deploy <code title="${fixture.newSha}">${newShort}</code> generation ${fixture.generation}`)
    )
    assert.match(body, /data-state="in progress"/)
    assert.match(body, /<li class="ph-live" data-node="web-1">web-1 <b>live<\/b><\/li>/)
    assert.match(body, /<li class="ph-deploying" data-node="web-2">web-2 <b>deploying<\/b><\/li>/)
    assert.match(body, /<li class="ph-waiting" data-node="web-3">web-3 <b>waiting<\/b><\/li>/)
    // The failure with its log tail.
    assert.match(body, /prepare <code[^>]*>[0-9a-f]{7}<\/code> on web-3: bin\/prepare failed \(exit code 3\)/)
    assert.ok(body.includes(fixture.logLine), "the failing step's log tail is on the page")
    // Lock and pin, with the operator's text escaped.
    assert.match(body, /Locked by bo: &lt;script&gt;alert\(1\)&lt;\/script&gt; freeze/)
    assert.doesNotMatch(body, /<script>alert/)
    assert.match(body, /Pinned at <code[^>]*>[0-9a-f]{7}<\/code> by bo: rolled back/)
    assert.match(body, /2 apps · 1 deploying · 1 with failures · 1 locked/)
  })

  it("signs a browser in with the token: an HttpOnly cookie that is not the token, refused when forged or wrong", async () => {
    const wrong = await login("nope")
    assert.equal(wrong.status, 401)
    assert.match(await wrong.text(), /not the controller&#39;s read token/)
    const ok = await login(TOKEN)
    assert.equal(ok.status, 303)
    assert.equal(ok.headers.get("location"), "/")
    const cookie = ok.headers.get("set-cookie") ?? ""
    assert.match(cookie, /^sacar_page=\d+\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/)
    assert.ok(!cookie.includes(TOKEN), "the cookie does not carry the token")
    const session = cookie.split(";")[0]!
    const page = await get("/", { cookie: session })
    assert.equal(page.status, 200)
    assert.match(await page.text(), /id="app-shop"/)
    const [expires, mac] = session.slice("sacar_page=".length).split(".")
    const later = `sacar_page=${Number(expires) + 1000}.${mac}`
    assert.equal((await get("/", { cookie: later })).status, 401, "a changed expiry breaks the MAC")
    const out = await fetch(`${controller.url}/page/logout`, { method: "POST", redirect: "manual" })
    assert.equal(out.status, 303)
    assert.match(out.headers.get("set-cookie") ?? "", /^sacar_page=; .*Max-Age=0/)
  })

  it("sends a live update when KV changes: only the app that changed, as a server-sent event", async () => {
    const page = await (await get("/", bearer)).text()
    const index = /<body data-index="(\d+)">/.exec(page)![1]!
    const pending = get(`/page/events?index=${index}`, bearer)
    // The request is held until something changes.
    const early = await Promise.race([pending.then(() => "answered"), sleep(300).then(() => "held")])
    assert.equal(early, "held")
    await putKv(consul.addr, `${prefix}/api/lock`, { by: "cy", reason: "db migration", at: new Date().toISOString() })
    const res = await pending
    assert.equal(res.status, 200)
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/)
    const event = await res.text()
    const id = /^id: (\d+)$/m.exec(event)
    assert.ok(id !== null && Number(id[1]) > Number(index), event)
    assert.match(event, /^event: apps$/m)
    const update = JSON.parse(/^data: (.*)$/m.exec(event)![1]!) as {
      order: string[]
      apps: Record<string, string>
    }
    assert.deepEqual(update.order, ["api", "shop"])
    assert.deepEqual(Object.keys(update.apps), ["api"], "shop did not change and is not resent")
    assert.match(update.apps.api!, /Locked by cy: db migration/)
    // Last-Event-ID (what EventSource sends on reconnect) counts as the seen index.
    const next = get(`/page/events?index=${index}`, { ...bearer, "last-event-id": id![1]! })
    const again = await Promise.race([next.then(() => "answered"), sleep(300).then(() => "held")])
    assert.equal(again, "held")
    await putKv(consul.addr, `${prefix}/api/lock`, { by: "cy", reason: "done soon", at: new Date().toISOString() })
    assert.match(await (await next).text(), /done soon/)
  })

  it("writes nothing to Consul, whatever is asked", async () => {
    const before = await snapshot(consul.addr, prefix)
    await get("/", bearer)
    await login(TOKEN)
    await fetch(`${controller.url}/page/logout`, { method: "POST" })
    await fetch(`${controller.url}/`, { method: "POST", headers: bearer })
    assert.deepEqual(await snapshot(consul.addr, prefix), before)
  })
})

describe("controller: the status page without a read token", () => {
  it("is off like /v1: 503 naming the setting", async () => {
    const consul = await startConsul()
    const controller = await startController(controllerEnv({ consul: consul.addr, prefix: randomPrefix() }))
    try {
      const res = await fetch(`${controller.url}/`)
      assert.equal(res.status, 503)
      assert.match(await res.text(), /SACAR_READ_TOKEN/)
      assert.equal((await fetch(`${controller.url}/page/events`)).status, 503)
    } finally {
      await controller.stop()
      await consul.close()
    }
  })
})
