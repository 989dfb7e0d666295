// The named schedules of src/common/retry.ts, run on TestClock: when each try happens.

import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { notifyRetry } from "../../src/common/retry.ts"

test("notifyRetry: tries again, doubling from 500 ms, only while the next try starts within the budget", async () => {
  const tries: Array<number> = []
  const exit = await Effect.runPromise(
    Effect.gen(function*() {
      const failing = Clock.currentTimeMillis.pipe(
        Effect.tap((now) => Effect.sync(() => tries.push(now))),
        Effect.andThen(Effect.fail("controller down"))
      )
      const fiber = yield* Effect.forkChild(Effect.exit(Effect.retry(failing, notifyRetry(3_000))))
      yield* TestClock.adjust("30 seconds")
      return yield* Fiber.join(fiber)
    }).pipe(Effect.provide(TestClock.layer()))
  )
  assert.ok(Exit.isFailure(exit), "gives up once the budget is spent")
  assert.equal(tries[0], 0)
  assert.ok(tries.length >= 3, `several tries within 3 s: ${tries.join(", ")}`)
  assert.ok(tries.at(-1)! <= 3_000, `no try starts after the budget: ${tries.join(", ")}`)
  // Equal jitter: each pause is between half and all of 500 ms doubling.
  const pauses = tries.slice(1).map((at, i) => at - tries[i]!)
  pauses.forEach((pause, i) => {
    const ceiling = Math.min(10_000, 500 * 2 ** i)
    assert.ok(
      pause >= ceiling / 2 && pause <= ceiling,
      `pause ${i} was ${pause} ms, expected ${ceiling / 2}..${ceiling}`
    )
  })
})
