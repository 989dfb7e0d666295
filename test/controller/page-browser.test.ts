// The status page in a real browser (headless Chromium from Debian, see
// test/support/browser.ts): sign in with the read token, read what the page shows,
// and watch a change in KV arrive without a reload. Saves a screenshot to
// .tmp/screenshots/status-page.png (gitignored).
import assert from "node:assert/strict"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { after, before, describe, it } from "node:test"
import { launchBrowser, type TestBrowser } from "../support/browser.ts"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { controllerEnv, putKv, type RunningController, startController } from "./harness.ts"
import { nodeStatus, type PageFixture, seedPage } from "./page-fixture.ts"

const TOKEN = "browser-read-token"
const SCREENSHOTS = join(import.meta.dirname, "..", "..", ".tmp", "screenshots")

describe("controller: the status page in Chromium", () => {
  let consul: TestConsul
  let controller: RunningController
  let browser: TestBrowser
  let prefix: string
  let fixture: PageFixture

  before(async () => {
    consul = await startConsul()
    prefix = randomPrefix()
    fixture = await seedPage(consul.addr, prefix)
    controller = await startController(controllerEnv({ consul: consul.addr, prefix, readToken: TOKEN }))
    browser = await launchBrowser()
    // Installing Chromium on a fresh machine (apt-get) takes minutes, not the test's default time.
  }, { timeout: 900_000 })

  after(async () => {
    await browser?.close()
    await controller?.stop()
    await consul?.close()
  })

  it("signs in with the token, shows the deploy and the failure, and updates live without a reload", async () => {
    const page = await browser.context.newPage()
    page.setDefaultTimeout(30_000)
    await page.goto(`${controller.url}/`)
    await page.getByLabel("Token").fill(TOKEN)
    await page.getByRole("button", { name: "Sign in" }).click()
    await page.waitForURL(`${controller.url}/`)

    // What the page shows.
    const shop = page.locator("#app-shop")
    await shop.getByText("acme/shop@main").waitFor()
    assert.equal(await page.locator("#summary").textContent(), "2 apps · 1 deploying · 1 with failures · 1 locked")
    assert.equal(await shop.locator(".deploy .state").textContent(), "in progress")
    assert.equal(await shop.locator("li[data-node=web-2] b").textContent(), "deploying")
    assert.equal(await shop.locator(`tr[data-sha="${fixture.newSha}"] td.ph-failed`).count(), 1)
    assert.match(await page.locator("#app-api .lock").textContent() ?? "", /^Locked by bo: <script>alert\(1\)/)
    // The failure's log tail opens on a click.
    const failure = shop.locator("details.failure").first()
    assert.equal(await failure.locator("pre").isVisible(), false)
    await failure.locator("summary").click()
    assert.match(
      await failure.locator("pre").innerText(),
      new RegExp(fixture.logLine.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    )
    // The session cookie is invisible to scripts.
    assert.equal(await page.evaluate(() => document.cookie), "")
    await page.locator("#state.live").waitFor()

    // A live update: web-2 finishes its deploy. The marker proves the page was not reloaded.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42))
    await putKv(
      consul.addr,
      `${prefix}/shop/status/web-2`,
      nodeStatus("web-2", {}, fixture.newSha, {
        generation: fixture.generation,
        sha: fixture.newSha,
        phase: "live",
        finishedAt: new Date().toISOString()
      })
    )
    await shop.locator("li[data-node=web-2].ph-live").waitFor()
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42)
    assert.equal(await page.locator("#app-shop li[data-node=web-2] b").textContent(), "live")
    assert.equal(
      await shop.locator("details.failure").first().getAttribute("open"),
      "",
      "the opened failure stays open"
    )

    mkdirSync(SCREENSHOTS, { recursive: true })
    await page.screenshot({ path: join(SCREENSHOTS, "status-page.png"), fullPage: true })
  })
})
