// A real browser for the page tests: Debian's Chromium at /usr/bin/chromium, installed
// by install-chromium.sh when missing (root and apt-get on CI), driven by
// playwright-core with a fresh profile. When the browser cannot be had, this throws
// with the installer's reason: a browser test fails, it never skips.
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium } from "playwright-core"

export const CHROMIUM = "/usr/bin/chromium"

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

export const ensureChromium = (): void => {
  const script = join(import.meta.dirname, "install-chromium.sh")
  const run = spawnSync("sh", [script], { encoding: "utf8", timeout: 600_000 })
  if (run.status !== 0) {
    throw new Error(
      `the browser tests need Chromium at ${CHROMIUM} and ${script} could not install it ` +
        `(exit ${run.status ?? run.signal}):\n${run.stderr}`
    )
  }
}

export interface TestBrowser {
  readonly context: BrowserContext
  close(): Promise<void>
}

/** Headless Chromium with a profile of its own (--user-data-dir), removed on close. */
export const launchBrowser = async (): Promise<TestBrowser> => {
  ensureChromium()
  const profile = mkdtempSync(join(tmpdir(), "sacar-chromium-"))
  // launchPersistentContext passes --user-data-dir=<profile>; headless adds --headless.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: 60_000
  })
  return {
    context,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}
