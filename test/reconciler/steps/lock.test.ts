import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { access, mkdir, readFile, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import { join } from "node:path"
import { describe, test } from "node:test"
import { lockRelease } from "../../../src/reconciler/steps/lock.ts"
import { scratch } from "./harness.ts"

const deadPid = async () => {
  const child = spawn("true")
  await new Promise((resolve) => child.on("exit", resolve))
  return child.pid!
}

describe("the release lock", { concurrency: true }, () => {
  test("held for the scope, then released", async (t) => {
    const file = join(await scratch(t), "lock")
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const holder = yield* lockRelease(file)
      assert.equal(holder.pid, process.pid)
      const onDisk = JSON.parse(yield* Effect.promise(() => readFile(file, "utf8")))
      assert.equal(onDisk.pid, process.pid)
      assert.equal(onDisk.host, hostname())
      assert.ok(Date.parse(onDisk.startedAt) > 0)
    })))
    await assert.rejects(access(file))
  })

  test("a live holder means ReleaseBusy, retryable, and its lock is left alone", async (t) => {
    const dir = await scratch(t)
    const file = join(dir, "lock")
    const holder = spawn("sleep", ["30"])
    t.after(() => void holder.kill("SIGKILL"))
    const content = JSON.stringify({ pid: holder.pid, host: hostname(), startedAt: "2026-11-27T10:00:00Z" })
    await writeFile(file, content)
    const exit = await Effect.runPromiseExit(Effect.scoped(lockRelease(file)))
    assert.ok(Exit.isFailure(exit))
    const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
    assert.ok(reason?._tag === "Fail" && reason.error._tag === "ReleaseBusy")
    assert.equal(reason.error.retryable, true)
    assert.match(reason.error.message, new RegExp(`pid ${holder.pid}`))
    assert.equal(await readFile(file, "utf8"), content)
  })

  test("two preparers in one process: the second is busy", async (t) => {
    const file = join(await scratch(t), "lock")
    const exit = await Effect.runPromiseExit(Effect.scoped(Effect.gen(function*() {
      yield* lockRelease(file)
      return yield* Effect.scoped(lockRelease(file))
    })))
    assert.ok(Exit.isFailure(exit))
    await assert.rejects(access(file))
  })

  test("a lock of a dead process on this host is taken over", async (t) => {
    const dir = await scratch(t)
    const file = join(dir, "lock")
    await writeFile(file, JSON.stringify({ pid: await deadPid(), host: hostname(), startedAt: "2026-11-27T10:00:00Z" }))
    const holder = await Effect.runPromise(Effect.scoped(lockRelease(file)))
    assert.equal(holder.pid, process.pid)
  })

  test("a lock from another host is never taken over", async (t) => {
    const dir = await scratch(t)
    const file = join(dir, "lock")
    await writeFile(
      file,
      JSON.stringify({ pid: await deadPid(), host: "some-other-host", startedAt: "2026-11-27T10:00:00Z" })
    )
    const exit = await Effect.runPromiseExit(Effect.scoped(lockRelease(file)))
    assert.ok(Exit.isFailure(exit))
  })

  test("many contenders for a stale lock: exactly one wins at a time", async (t) => {
    const dir = await scratch(t)
    await mkdir(dir, { recursive: true })
    const file = join(dir, "lock")
    await writeFile(file, JSON.stringify({ pid: await deadPid(), host: hostname(), startedAt: "2026-11-27T10:00:00Z" }))
    let inside = 0
    let most = 0
    const contender = Effect.scoped(Effect.gen(function*() {
      yield* lockRelease(file)
      inside++
      most = Math.max(most, inside)
      yield* Effect.sleep("20 millis")
      inside--
    })).pipe(Effect.result)
    const results = await Effect.runPromise(
      Effect.all(Array.from({ length: 8 }, () => contender), { concurrency: "unbounded" })
    )
    assert.equal(most, 1)
    assert.ok(results.some((r) => r._tag === "Success"))
  })
})
