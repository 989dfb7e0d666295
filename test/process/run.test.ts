import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { describe, test } from "node:test"
import { promisify } from "node:util"
import { runProcess } from "../../src/process/run.ts"
import { lastBytes, TailBuffer } from "../../src/process/tail.ts"
import { eventually } from "../support/eventually.ts"

const exec = promisify(execFile)
const env = { PATH: "/usr/bin:/bin" }

const isRunning = async (marker: string) => {
  const { stdout } = await exec("ps", ["-eo", "args"])
  return stdout.split("\n").some((line) => line.includes(marker))
}

describe("runProcess", { concurrency: true }, () => {
  test("the tail keeps only the last bytes, whatever the chunking", () => {
    const tail = new TailBuffer(10)
    for (const chunk of ["abc", "defghijkl", "mnopqrstuvwxyz0123456789", "!"]) tail.write(Buffer.from(chunk))
    assert.equal(tail.toString(), "123456789!")
    assert.equal(lastBytes("é".repeat(10), 5), "éé")
  })

  test("success, with the combined output's tail", async () => {
    const result = await Effect.runPromise(runProcess({ command: "sh", args: ["-c", "echo out; echo err >&2"], env }))
    assert.match(result.tail, /out\n/)
    assert.match(result.tail, /err\n/)
  })

  test("a failure carries exit code and at most 4 KiB of the end of the output", async () => {
    const exit = await Effect.runPromiseExit(runProcess({
      command: "sh",
      args: ["-c", "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo last words; exit 7"],
      env
    }))
    assert.ok(Exit.isFailure(exit))
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")
    assert.ok(error?._tag === "Fail" && error.error._tag === "ProcessFailed")
    assert.equal(error.error.exitCode, 7)
    assert.ok(error.error.tail.length <= 4096)
    assert.match(error.error.tail, /line 1999\nlast words\n$/)
  })

  test("the environment is exactly what was given", async () => {
    process.env.SACAR_TEST_SECRET = "leak"
    const result = await Effect.runPromise(runProcess({ command: "/usr/bin/env", env: { ONLY: "this" } }))
    assert.equal(result.tail.trim(), "ONLY=this")
  })

  test("a command that does not exist", async () => {
    const exit = await Effect.runPromiseExit(runProcess({ command: "/nonexistent/tool", env }))
    assert.ok(Exit.isFailure(exit))
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")
    assert.ok(error?._tag === "Fail" && error.error._tag === "ProcessFailed")
    assert.match(error.error.message, /could not be started: ENOENT/)
  })

  test("a timeout kills the whole group, even a child that ignores SIGTERM", async () => {
    const marker = `sacar-timeout-${process.pid}-${Date.now()}`
    const started = Date.now()
    const exit = await Effect.runPromiseExit(runProcess({
      command: "sh",
      args: ["-c", `trap '' TERM; sleep 60 # ${marker}\n`],
      env,
      timeoutMs: 300,
      killGraceMs: 300
    }))
    assert.ok(Exit.isFailure(exit))
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")
    assert.ok(error?._tag === "Fail" && error.error._tag === "ProcessTimedOut")
    assert.ok(Date.now() - started < 5000)
    assert.equal(await isRunning(marker), false)
  })

  test("interruption kills the group and waits for it", async () => {
    const marker = `sacar-interrupt-${process.pid}-${Date.now()}`
    const fiber = Effect.runFork(runProcess({
      command: "sh",
      args: ["-c", `(sleep 60 # ${marker}\n) & sleep 60 # ${marker}\n`],
      env,
      killGraceMs: 500
    }))
    await eventually("the group to start", () => isRunning(marker), 5_000)
    await Effect.runPromise(Fiber.interrupt(fiber))
    assert.equal(await isRunning(marker), false)
  })

  // The leader honours TERM and exits at once; its child ignores TERM. The group must
  // still be killed after the grace, not abandoned when the leader is gone.
  const leaderExitsChildStays = (marker: string) =>
    `sh -c "trap '' TERM; sleep 60 # ${marker}
" & wait`

  test("a timeout kills a grandchild that ignores SIGTERM after its leader exited", async () => {
    const marker = `sacar-orphan-timeout-${process.pid}-${Date.now()}`
    const exit = await Effect.runPromiseExit(runProcess({
      command: "sh",
      args: ["-c", leaderExitsChildStays(marker)],
      env,
      timeoutMs: 500,
      killGraceMs: 300
    }))
    assert.ok(Exit.isFailure(exit))
    assert.equal(await isRunning(marker), false)
  })

  test("interruption kills a grandchild that ignores SIGTERM after its leader exited", async () => {
    const marker = `sacar-orphan-interrupt-${process.pid}-${Date.now()}`
    const fiber = Effect.runFork(
      runProcess({ command: "sh", args: ["-c", leaderExitsChildStays(marker)], env, killGraceMs: 300 })
    )
    await eventually("the grandchild to start", () => isRunning(marker), 5_000)
    await Effect.runPromise(Fiber.interrupt(fiber))
    assert.equal(await isRunning(marker), false)
  })

  test("what a successful command left running in its group does not outlive it", async () => {
    const marker = `sacar-leftover-${process.pid}-${Date.now()}`
    await Effect.runPromise(runProcess({
      command: "sh",
      args: [
        "-c",
        `sh -c "trap '' TERM; sleep 60 # ${marker}
" >/dev/null 2>&1 & sleep 0.3; exit 0`
      ],
      env,
      killGraceMs: 300
    }))
    assert.equal(await isRunning(marker), false)
  })

  test("output is bounded however much the child writes", async () => {
    const before = process.memoryUsage().rss
    const result = await Effect.runPromise(
      runProcess({ command: "sh", args: ["-c", "head -c 100000000 /dev/zero | tr '\\0' a"], env })
    )
    assert.equal(result.tail, "a".repeat(4096))
    assert.ok(process.memoryUsage().rss - before < 80 * 1024 * 1024)
  })
})
