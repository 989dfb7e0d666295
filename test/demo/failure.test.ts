// A walk-through that cannot finish in time fails with exit 1 and a reason, and still
// stops every process it started (here in the middle of packing, with pip running).
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { runDemo } from "../../src/demo/run.ts"
import { randomPrefix } from "../support/consul.ts"
import { eventually } from "../support/eventually.ts"
import { childEnv } from "../support/sacar.ts"
import { isAlive, loggedPids, processesMentioning } from "./harness.ts"

test(
  "a walk-through over its time bound exits 1 with the reason and leaves nothing running",
  { timeout: 60_000 },
  async (t) => {
    const base = await mkdtemp(join(tmpdir(), "sacar-demo-bound-"))
    const dir = join(base, "demo")
    t.after(async () => {
      for (const p of processesMentioning(dir)) {
        try {
          process.kill(p.pid, "SIGKILL")
        } catch {
          // gone
        }
      }
      await rm(base, { recursive: true, force: true })
    })
    let out = ""
    let err = ""
    const code = await runDemo(
      { once: true, keepRunning: false, dir },
      {
        env: childEnv({ SACAR_PREFIX: randomPrefix() }),
        cwd: base,
        out: { write: (t: string) => void (out += t), isTTY: false },
        err: { write: (t: string) => void (err += t) },
        boundMs: 2_000
      }
    )
    assert.equal(code, 1, `stdout:\n${out}\nstderr:\n${err}`)
    assert.match(err, /the walk-through did not finish within 2 s; see the logs in demo\/logs/)
    const pids = await loggedPids(join(dir, "pids"))
    assert.equal(pids.length, 4)
    await eventually("the demo's processes to end", () => pids.every((p) => !isAlive(p.pid)), 2_000)
    await eventually(
      `no process using ${dir}`,
      () => processesMentioning(dir).length === 0,
      2_000,
      () => JSON.stringify(processesMentioning(dir))
    )
    assert.equal(process.listenerCount("SIGINT"), 0, "the demo's signal handlers are gone")
  }
)

test(
  "a --dir the demo did not make is refused (exit 2) and nothing running out of it is touched",
  { timeout: 30_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "sacar-demo-theirs-"))
    await writeFile(join(dir, "precious"), "not the demo's")
    // Stands in for a real reconciler whose SACAR_ROOT is the folder someone passed by mistake.
    const theirs = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
      env: childEnv({ SACAR_ROOT: dir }),
      stdio: "ignore"
    })
    t.after(async () => {
      theirs.kill("SIGKILL")
      await rm(dir, { recursive: true, force: true })
    })
    let err = ""
    const code = await runDemo(
      { once: true, keepRunning: false, dir },
      {
        env: childEnv(),
        cwd: tmpdir(),
        out: { write: () => {}, isTTY: false },
        err: { write: (t: string) => void (err += t) }
      }
    )
    assert.equal(code, 2)
    assert.match(err, /is not empty and was not made by sacar demo; pick another --dir or empty it/)
    assert.equal(await readFile(join(dir, "precious"), "utf8"), "not the demo's")
    assert.ok(isAlive(theirs.pid!), "a process using the folder was killed")
  }
)
