// The demo's set-up rules: options, which Consul and prefix, the folder it may wipe,
// the prefix it may clear, and the text that tells the operator what to try next.
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { UsageError } from "../../src/cli/args.ts"
import { Consul } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { claimPrefix, demoMarkerKey, PrefixRefused } from "../../src/demo/consul.ts"
import { liveDisplay, plainDisplay } from "../../src/demo/display.ts"
import { demoFolder, FolderRefused, prepareFolder } from "../../src/demo/folder.ts"
import { nextSteps, shownPath } from "../../src/demo/next-steps.ts"
import { chooseConsul, parseDemoArgs } from "../../src/demo/options.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { randomPrefix, startConsul } from "../support/consul.ts"

const tempDir = async (t: { after: (fn: () => Promise<void>) => void }) => {
  const dir = await mkdtemp(join(tmpdir(), "sacar-demo-setup-"))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test("options: defaults, flags, and mistakes as usage errors", () => {
  assert.deepEqual(parseDemoArgs([], "/home/a/sacar"), { once: false, keepRunning: false, dir: "/home/a/sacar/.demo" })
  assert.deepEqual(parseDemoArgs(["--once", "--dir", "x/y"], "/w"), { once: true, keepRunning: false, dir: "/w/x/y" })
  assert.deepEqual(parseDemoArgs(["--keep-running", "--dir=/tmp/d"], "/w"), {
    once: false,
    keepRunning: true,
    dir: "/tmp/d"
  })
  assert.throws(() => parseDemoArgs(["--once", "--keep-running"], "/w"), UsageError)
  assert.throws(() => parseDemoArgs(["--bogus"], "/w"), UsageError)
  assert.throws(() => parseDemoArgs(["extra"], "/w"), UsageError)
  assert.throws(() => parseDemoArgs(["--dir", "."], "/w"), /would wipe/)
  assert.throws(() => parseDemoArgs(["--dir", "/"], "/w"), /would wipe/)
})

test("Consul: embedded with prefix sacar, or CONSUL_HTTP_ADDR with sacar-demo, SACAR_PREFIX winning", () => {
  assert.deepEqual(chooseConsul({}), { kind: "embedded", prefix: "sacar" })
  assert.deepEqual(chooseConsul({ SACAR_PREFIX: "mine/" }), { kind: "embedded", prefix: "mine" })
  assert.deepEqual(chooseConsul({ CONSUL_HTTP_ADDR: "10.0.0.1:8500" }), {
    kind: "external",
    address: "10.0.0.1:8500",
    prefix: "sacar-demo"
  })
  assert.deepEqual(chooseConsul({ CONSUL_HTTP_ADDR: "c:8500", SACAR_PREFIX: "t-1" }), {
    kind: "external",
    address: "c:8500",
    prefix: "t-1"
  })
  assert.deepEqual(chooseConsul({ CONSUL_HTTP_ADDR: "" }), { kind: "embedded", prefix: "sacar" })
})

test("the folder: laid out fresh, a previous run's wiped, anyone else's refused", async (t) => {
  const base = await tempDir(t)
  const folder = demoFolder(join(base, ".demo"))
  assert.deepEqual(await prepareFolder(folder), { leftovers: 0 })
  assert.deepEqual((await readdir(folder.dir)).sort(), [
    ".sacar-demo",
    "artifacts",
    "demo.pid",
    "logs",
    "nodes",
    "pids"
  ])
  assert.deepEqual((await readdir(join(folder.dir, "nodes"))).sort(), ["demo-1", "demo-2", "demo-3"])
  await writeFile(join(folder.logs, "old.log"), "from the last run")
  await writeFile(folder.pids, "999999999 demo-1\n")
  await prepareFolder(folder)
  assert.deepEqual(await readdir(folder.logs), [])
  assert.equal(await readFile(folder.pids, "utf8"), "")

  const empty = demoFolder(join(base, "empty"))
  await mkdir(empty.dir)
  await prepareFolder(empty)
  const precious = demoFolder(join(base, "src"))
  await mkdir(precious.dir)
  await writeFile(join(precious.dir, "main.py"), "print('mine')")
  await assert.rejects(prepareFolder(precious), FolderRefused)
  assert.equal(await readFile(join(precious.dir, "main.py"), "utf8"), "print('mine')")
})

test("an external prefix is claimed when empty or the demo's, refused when it holds other data", async (t) => {
  const consul = await startConsul()
  const run = <A, E>(effect: Effect.Effect<A, E, Consul>) =>
    Effect.runPromise(effect.pipe(Effect.provide(consulLayer({ address: consul.addr, tls: { verify: true } }))))
  const keys = makeKeys(randomPrefix())
  const theirs = makeKeys(randomPrefix())
  t.after(async () => {
    for (const k of [keys, theirs]) await run(Consul.use((c) => c.delete(k.root, { recurse: true })))
    await consul.close()
  })

  await run(claimPrefix(keys, "/tmp/a"))
  const marker = await run(Consul.use((c) => c.get(demoMarkerKey(keys))))
  assert.match(marker.value?.value ?? "", /"dir":"\/tmp\/a"/)
  await run(Consul.use((c) => c.put(keys.config("shop"), "{}")))
  await run(claimPrefix(keys, "/tmp/b"))
  assert.equal(
    (await run(Consul.use((c) => c.get(keys.config("shop"))))).value,
    undefined,
    "the demo's old keys are cleared"
  )

  await run(Consul.use((c) => c.put(theirs.config("billing"), "{}")))
  await assert.rejects(run(claimPrefix(theirs, "/tmp/c")), PrefixRefused)
  assert.notEqual(
    (await run(Consul.use((c) => c.get(theirs.config("billing"))))).value,
    undefined,
    "nothing of theirs is touched"
  )
})

test("plain display prints lines and ignores the table; the live one redraws it in place", () => {
  let plain = ""
  const p = plainDisplay((t) => (plain += t))
  p.say("one")
  p.table(["table"])
  assert.equal(plain, "one\n")

  let out = ""
  const d = liveDisplay((t) => (out += t), () => 30)
  d.table(["row 1", "row 2"])
  assert.equal(out, "row 1\nrow 2\n")
  out = ""
  d.table(["row 1", "row 2"])
  assert.equal(out, "", "an unchanged table is not redrawn")
  d.say("event")
  assert.equal(out, "\x1b[2F\x1b[Jevent\nrow 1\nrow 2\n", "erase the table, print the line, draw the table below it")
  out = ""
  d.table(["x".repeat(50)])
  assert.equal(out, `\x1b[2F\x1b[J${"x".repeat(28)}…\n`, "lines are cut to the terminal width so the erase stays exact")
  out = ""
  d.freeze()
  d.say("after")
  assert.equal(out, "after\n", "a frozen table stays as output")
})

test("next steps name the real address, prefix, commands and paths", () => {
  const sha = "f".repeat(40)
  const second = "e".repeat(40)
  const text = nextSteps({
    app: "shop",
    consul: "http://127.0.0.1:41234",
    keys: makeKeys("sacar-demo"),
    sha,
    secondSha: second,
    artifacts: "/w/.demo/artifacts",
    controllerUrl: "http://127.0.0.1:39821",
    logs: "/w/.demo/logs",
    nodeRoots: [{ node: "demo-1", root: "/w/.demo/nodes/demo-1" }],
    keepRunning: true,
    cwd: "/w"
  })
  assert.match(text, /^Everything stays up until Ctrl-C/)
  assert.match(text, /export CONSUL_HTTP_ADDR=http:\/\/127\.0\.0\.1:41234 SACAR_PREFIX=sacar-demo$/m)
  assert.match(text, /npx sacar status shop --watch/)
  assert.match(text, new RegExp(`cp \\.demo/artifacts/${sha}\\.tgz \\.demo/artifacts/${second}\\.tgz`))
  assert.match(text, new RegExp(`consul kv put sacar-demo/shop/releases/${second} '\\{\\}'`))
  assert.match(text, new RegExp(`npx sacar deploy shop ${second}`))
  assert.match(text, /npx sacar rollback shop/)
  assert.match(text, /http:\/\/127\.0\.0\.1:39821\/metrics/)
  assert.match(text, /http:\/\/127\.0\.0\.1:39821\/healthz/)
  assert.match(text, /\.demo\/logs\/ \(controller\.log, demo-1\.log; JSON lines\)/)
  const once = nextSteps({
    app: "shop",
    consul: "c",
    keys: makeKeys("sacar"),
    sha,
    secondSha: second,
    artifacts: "/a",
    controllerUrl: "u",
    logs: "/l",
    nodeRoots: [],
    keepRunning: false,
    cwd: "/w"
  })
  assert.match(once, /^Everything stops now\. `npx sacar demo --keep-running`/)
  assert.match(once, /export CONSUL_HTTP_ADDR=c$/m, "the default prefix needs no variable")
  assert.equal(shownPath("/w/.demo", "/w"), ".demo")
  assert.equal(shownPath("/tmp/x", "/w"), "/tmp/x")
})
