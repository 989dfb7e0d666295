// `sacar demo` end to end, as a user runs it: a child process, the real controller and
// reconcilers, the example app packed offline. Each test gets its own folder and KV
// prefix, so it is safe next to other test files, and on a real Consul too.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtemp, readlink, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { randomPrefix } from "../support/consul.ts"
import { eventually } from "../support/eventually.ts"
import { nodePython } from "../support/node-python.ts"
import { childEnv, SACAR_BIN } from "../support/sacar.ts"
import { assertNothingLeft, isAlive, loggedPids, processesMentioning } from "./harness.ts"

interface Run {
  readonly child: ReturnType<typeof spawn>
  readonly output: () => { stdout: string; stderr: string }
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

// The PATH of a machine with its Pythons installed normally, as test nodes get (see
// test/support/node-python.ts): each of the demo's reconcilers runs every pythonX.Y on
// its PATH once at start-up, and a developer's pyenv shims make that about 3 CPU-seconds.
const python = await nodePython()

const startDemo = (dir: string, args: string[] = []): Run => {
  const child = spawn(process.execPath, [SACAR_BIN, "demo", "--dir", dir, ...args], {
    env: childEnv({ SACAR_PREFIX: randomPrefix(), PATH: python.path }),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal }))
  )
  return { child, output: () => ({ stdout, stderr }), exited }
}

const tempDir = async (t: { after: (fn: () => Promise<void>) => void }) => {
  const dir = await mkdtemp(join(tmpdir(), "sacar-demo-test-"))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return join(dir, "demo")
}

/** Kills whatever a failed test may have left, so one failure does not leak into the next. */
const cleanup = (run: Run, dir: string) => async () => {
  if (run.child.exitCode === null) run.child.kill("SIGKILL")
  for (const p of processesMentioning(dir)) {
    try {
      process.kill(p.pid, "SIGKILL")
    } catch {
      // gone
    }
  }
}

test(
  "sacar demo --once walks one release to live on all three nodes and leaves nothing running",
  { timeout: 180_000 },
  async (t) => {
    const dir = await tempDir(t)
    const started = Date.now()
    const run = startDemo(dir, ["--once"])
    t.after(cleanup(run, dir))
    const { code } = await run.exited
    const { stdout, stderr } = run.output()
    assert.equal(code, 0, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`)

    const sha = /^commit\s+([0-9a-f]{40})\b/m.exec(stdout)?.[1]
    assert.ok(sha, `no commit line in:\n${stdout}`)
    for (const node of ["demo-1", "demo-2", "demo-3"]) {
      assert.equal(await readlink(join(dir, "nodes", node, "shop", "current")), `releases/${sha}`, node)
      assert.match(stdout, new RegExp(`^${node}\\s+ready\\s+prepared in`, "m"))
      assert.match(stdout, new RegExp(`^${node}\\s+deploy\\s+live$`, "m"))
      assert.match(stdout, new RegExp(`^${node}\\s+current\\s+-> releases/${sha.slice(0, 7)}$`, "m"))
    }
    assert.match(stdout, /^live\s+on all 3 nodes in /m)
    // `current` switches node by node: one line per node, each naming the release.
    const switched = [...stdout.matchAll(/^(demo-\d)\s+current\s/gm)].map((m) => m[1])
    assert.deepEqual([...switched].sort(), ["demo-1", "demo-2", "demo-3"], stdout)
    await assertNothingLeft(dir)
    t.diagnostic(`demo --once took ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
)

/** Waits until the nodes prepare (pip at work under each reconciler), the busiest moment to interrupt. */
const untilPreparing = async (run: Run) => {
  const reached = await Promise.race([
    eventually(
      "the nodes to prepare",
      () => /^demo-\d\s+(venv|install)\b/m.test(run.output().stdout),
      120_000,
      () => `${run.output().stdout}\n${run.output().stderr}`
    ),
    run.exited.then(() => false)
  ])
  assert.ok(reached, `the demo never got to preparing:\n${run.output().stdout}\n${run.output().stderr}`)
}

test("Ctrl-C in the middle of the demo stops every process and exits 130", { timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t)
  const run = startDemo(dir)
  t.after(cleanup(run, dir))
  await untilPreparing(run)
  const interruptedAt = Date.now()
  run.child.kill("SIGINT")
  const { code } = await run.exited
  const { stdout, stderr } = run.output()
  assert.equal(code, 130, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`)
  assert.match(stdout, /interrupted; stopping/)
  assert.ok(Date.now() - interruptedAt < 15_000, `stopping took ${Date.now() - interruptedAt} ms`)
  await assertNothingLeft(dir)
})

test(
  "a demo killed with SIGKILL still leaves nothing running: its watchdog stops the children",
  { timeout: 180_000 },
  async (t) => {
    const dir = await tempDir(t)
    const run = startDemo(dir)
    t.after(cleanup(run, dir))
    await untilPreparing(run)
    run.child.kill("SIGKILL")
    await run.exited
    const pids = await loggedPids(join(dir, "pids"))
    assert.equal(pids.length, 4)
    // The children get SIGTERM, then SIGKILL after the watchdog's grace (3 s).
    await eventually(
      "the demo's processes to end",
      () => pids.every((p) => !isAlive(p.pid)) && processesMentioning(dir).length === 0,
      15_000,
      () => `left running: ${JSON.stringify(processesMentioning(dir))}`
    )
  }
)
