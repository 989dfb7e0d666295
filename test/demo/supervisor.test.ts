// The demo's process list with stand-in children (small node scripts): every way of
// stopping leaves nothing running, including children that ignore SIGTERM and the
// processes they started themselves.
import assert from "node:assert/strict"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { killLeftovers, processesUsing } from "../../src/demo/leftovers.ts"
import { type ChildExit, Supervisor } from "../../src/demo/processes.ts"
import { eventually } from "../support/eventually.ts"
import { childEnv } from "../support/sacar.ts"
import { isAlive, processesMentioning } from "./harness.ts"

const setup = async (t: { after: (fn: () => Promise<void> | void) => void }, graceMs = 5_000) => {
  const dir = await mkdtemp(join(tmpdir(), "sacar-demo-sup-"))
  const pidsFile = join(dir, "pids")
  await writeFile(pidsFile, "")
  const supervisor = new Supervisor({ dir, pidsFile, graceMs })
  t.after(async () => {
    supervisor.killAllNow()
    for (const p of processesMentioning(dir)) {
      try {
        process.kill(p.pid, "SIGKILL")
      } catch {
        // gone
      }
    }
    await rm(dir, { recursive: true, force: true })
  })
  const start = (name: string, script: string) =>
    supervisor.start({
      name,
      command: process.execPath,
      args: ["-e", script],
      env: childEnv(),
      logFile: join(dir, `${name}.log`)
    })
  return { dir, pidsFile, supervisor, start }
}

const WAITS = "console.log('up'); setInterval(() => {}, 1000)"
const IGNORES_TERM =
  "process.on('SIGTERM', () => console.log('ignoring TERM')); console.log('up'); setInterval(() => {}, 1000)"
// A child that starts a grandchild in its own process group (as a spawn without detached does).
const WITH_GRANDCHILD = `
  const { spawn } = require("node:child_process")
  const g = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
  console.log("grandchild " + g.pid)
  process.on("SIGTERM", () => {})
  setInterval(() => {}, 1000)`

const logged = (file: string, pattern: RegExp) =>
  eventually(
    `${file} to match ${pattern}`,
    async () => pattern.exec(await readFile(file, "utf8").catch(() => "")) ?? undefined,
    10_000
  )

test("children are listed in the pids file, log to their file and stop on SIGTERM", async (t) => {
  const { dir, pidsFile, supervisor, start } = await setup(t)
  const a = await start("a", WAITS)
  const b = await start("b", WAITS)
  await logged(join(dir, "a.log"), /up/)
  assert.equal(await readFile(pidsFile, "utf8"), `${a.pid} a\n${b.pid} b\n`)
  const started = Date.now()
  const killed = await supervisor.stopAll()
  assert.deepEqual(killed, [])
  assert.ok(Date.now() - started < 3_000)
  assert.deepEqual(a.exit(), { code: null, signal: "SIGTERM" })
  assert.ok(!isAlive(a.pid) && !isAlive(b.pid))
})

test("a child that ignores SIGTERM is killed after the grace, with the group it leads", async (t) => {
  const { dir, supervisor, start } = await setup(t, 500)
  const stubborn = await start("stubborn", IGNORES_TERM)
  await start("parent", WITH_GRANDCHILD)
  await logged(join(dir, "stubborn.log"), /up/)
  const grandchild = Number((await logged(join(dir, "parent.log"), /grandchild (\d+)/))[1])
  assert.ok(isAlive(grandchild))
  const killed = await supervisor.stopAll()
  assert.deepEqual(killed.sort(), ["parent", "stubborn"])
  assert.equal(stubborn.exit()?.signal, "SIGKILL")
  await eventually("the grandchild to end with its parent", () => !isAlive(grandchild), 2_000)
  assert.deepEqual(processesUsing(dir), [])
})

test("a child that exits on its own is reported; one stopped by stopAll is not", async (t) => {
  const { supervisor, start } = await setup(t)
  const seen: Array<[string, ChildExit]> = []
  supervisor.onUnexpectedExit((child, exit) => seen.push([child.name, exit]))
  const quitter = await start("quitter", "setTimeout(() => process.exit(3), 50)")
  await start("stays", WAITS)
  await quitter.exited
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(seen, [["quitter", { code: 3, signal: null }]])
  await supervisor.stopAll()
  assert.equal(seen.length, 1)
  await assert.rejects(start("late", WAITS), /stopping/)
})

test("killAllNow kills at once, for the ways out that cannot wait", async (t) => {
  const { dir, supervisor, start } = await setup(t)
  const child = await start("stubborn", IGNORES_TERM)
  await logged(join(dir, "stubborn.log"), /up/)
  supervisor.killAllNow()
  assert.equal((await child.exited).signal, "SIGKILL")
})

test("the next run stops what a killed run left, and only what carries its folder", async (t) => {
  const { dir, pidsFile, start } = await setup(t)
  const orphan = await start("orphan", IGNORES_TERM)
  await logged(join(dir, "orphan.log"), /up/)
  // A pid that is alive but not the demo's (this test process) must never be touched.
  await writeFile(pidsFile, `${orphan.pid} orphan\n${process.pid} not-ours\n`)
  assert.deepEqual(processesUsing(dir), [orphan.pid])
  const stopped = await killLeftovers(await readFile(pidsFile, "utf8"), dir, 300)
  assert.equal(stopped, 1)
  assert.equal((await orphan.exited).signal, "SIGKILL")
  assert.equal(await killLeftovers("garbage\n\n1 init\n", dir, 100), 0)
})
