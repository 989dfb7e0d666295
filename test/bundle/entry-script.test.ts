// The dist's entry script starts the shipped JavaScript (bin/sacar.js) with Node's compile
// cache on, set before Node starts, and the reconciler with its own Node options.

import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { entryScript } from "../../src/bundle/entries.ts"

test("the entry script sets NODE_COMPILE_CACHE under TMPDIR unless it is set already", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sacar-entry-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, "sacar"), entryScript("0.0.0"))
  mkdirSync(join(dir, "node_modules", "node", "bin"), { recursive: true })
  // A stand-in for the shipped Node: says what it was started with.
  const fakeNode = join(dir, "node_modules", "node", "bin", "node")
  writeFileSync(fakeNode, "#!/bin/sh\necho \"$NODE_COMPILE_CACHE $*\"\n")
  chmodSync(fakeNode, 0o755)
  const run = (env: Record<string, string>) =>
    execFileSync("sh", [join(dir, "sacar"), "status"], { env: { PATH: "/usr/bin:/bin", ...env } }).toString()
  assert.equal(run({ TMPDIR: "/var/tmp" }), `/var/tmp/node-compile-cache ${join(dir, "bin", "sacar.js")} status\n`)
  assert.equal(run({ NODE_COMPILE_CACHE: "/srv/cache" }).split(" ")[0], "/srv/cache")
})

test("the entry script starts a reconciler with a small young generation, other commands without", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sacar-entry-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, "sacar"), entryScript("0.0.0"))
  mkdirSync(join(dir, "node_modules", "node", "bin"), { recursive: true })
  const fakeNode = join(dir, "node_modules", "node", "bin", "node")
  writeFileSync(fakeNode, "#!/bin/sh\necho \"$*\"\n")
  chmodSync(fakeNode, 0o755)
  const run = (...args: string[]) =>
    execFileSync("sh", [join(dir, "sacar"), ...args], { env: { PATH: "/usr/bin:/bin" } }).toString().trim()
  assert.equal(run("reconciler"), `--max-semi-space-size=1 ${join(dir, "bin", "sacar.js")} reconciler`)
  assert.equal(run("status", "shop"), `${join(dir, "bin", "sacar.js")} status shop`)
})
