// A demo run again from the shell the first one set up: a clear outcome instead of a
// stack trace when that demo's Consul is gone, and a refusal (naming the first) when a
// demo is still running in the same folder.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { demoFolder, FolderRefused, prepareFolder } from "../../src/demo/folder.ts"
import { runDemo } from "../../src/demo/run.ts"

const tempDir = async (t: { after: (fn: () => Promise<void>) => void }) => {
  const dir = await mkdtemp(join(tmpdir(), "sacar-demo-again-"))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test("CONSUL_HTTP_ADDR naming a Consul that is gone: which address, that it looks like an earlier demo's, how to start afresh", async (t) => {
  const dir = join(await tempDir(t), ".demo")
  // The earlier run recorded the Consul it used, as every run does.
  await prepareFolder(demoFolder(dir))
  await writeFile(join(dir, "consul-address"), "http://127.0.0.1:1\n")
  let out = ""
  let err = ""
  const code = await runDemo({ once: true, keepRunning: false, dir }, {
    env: { ...process.env, CONSUL_HTTP_ADDR: "127.0.0.1:1" },
    cwd: dirname(dir),
    out: { write: (s: string) => void (out += s) },
    err: { write: (s: string) => void (err += s) }
  })
  assert.equal(code, 1, err)
  assert.match(err, /cannot reach the Consul at http:\/\/127\.0\.0\.1:1 \(CONSUL_HTTP_ADDR\)/)
  assert.match(err, /an earlier demo's/)
  assert.match(err, /unset CONSUL_HTTP_ADDR/)
  assert.doesNotMatch(err, /\n\s+at .+:\d+/, "no stack trace")
  assert.doesNotMatch(err, /unexpected failure/)
  void out
})

const dirname = (p: string) => p.slice(0, p.lastIndexOf("/"))

test("a second demo in a folder where one is running refuses, naming the first", async (t) => {
  const dir = join(await tempDir(t), ".demo")
  const folder = demoFolder(dir)
  await prepareFolder(folder)
  // Stands in for the first demo: a live process whose command line is `sacar demo`.
  const first = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "sacar", "demo", "--keep-running"], {
    stdio: "ignore"
  })
  t.after(() => void first.kill("SIGKILL"))
  await writeFile(join(dir, "demo.pid"), `${first.pid}\n`)
  await assert.rejects(prepareFolder(folder), (e: Error) => {
    assert.ok(e instanceof FolderRefused)
    assert.match(e.message, new RegExp(`a demo is already running in ${dir} \\(pid ${first.pid}\\)`))
    return true
  })
  assert.equal(first.exitCode, null, "the first demo is left alone")
  assert.equal(first.signalCode, null)
  // Once it is gone, the folder is the next run's.
  first.kill("SIGKILL")
  await new Promise((r) => first.once("close", r))
  await prepareFolder(folder)
})
