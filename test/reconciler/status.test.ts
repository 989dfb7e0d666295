// The status writer: coalesced writes, flush on demand and at the end, retries after
// a failed write. Consul is a fake service recording PUTs.
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { ConsulUnavailable } from "../../src/consul/consul.ts"
import { emptyStatus, makeStatusWriter } from "../../src/reconciler/status.ts"
import { encodeDocument } from "../../src/spec/decode.ts"
import { NodeStatus } from "../../src/spec/documents.ts"
import { consulStandIn } from "../support/consul-stand-in.ts"

const fakeConsul = (puts: Array<{ key: string; value: string }>, failFirst = 0) => {
  let failures = failFirst
  return consulStandIn("the status writer", {
    put: (key, value) =>
      Effect.suspend(() => {
        if (failures > 0) {
          failures -= 1
          return Effect.fail(new ConsulUnavailable({ address: "fake", operation: "put", message: "down" }))
        }
        puts.push({ key, value })
        return Effect.succeed(true)
      })
  })
}

const A = "a".repeat(40)

const phase = (p: "pending" | "download" | "extract") => (s: ReturnType<typeof emptyStatus>) => ({
  ...s,
  releases: { [A]: { phase: p, attempt: 1, steps: {} } }
})
// Under TestClock the clock only moves when the test moves it: "at once" means without any time passing.
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})
/** A writer of key "k" whose status Consul already holds. */
const storedWriter = (intervalMs: number) =>
  makeStatusWriter({ key: "k", initial: emptyStatus("web-1", "2026-01-01T00:00:00.000Z"), stored: true, intervalMs })

describe("status writer", () => {
  test("many changes in one interval become one write; the final state is always written", async () => {
    const puts: Array<{ key: string; value: string }> = []
    await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const writer = yield* makeStatusWriter({
          key: "sacar/shop/status/web-1",
          initial: emptyStatus("web-1", "2026-01-01T00:00:00.000Z"),
          stored: true,
          intervalMs: 300
        })
        for (const phase of ["pending", "download", "extract", "lock", "venv", "install"] as const) {
          yield* writer.update((s) => ({ ...s, releases: { [A]: { phase, attempt: 1, steps: {} } } }))
        }
        yield* Effect.sleep(100)
        yield* writer.update((s) => ({
          ...s,
          releases: { [A]: { phase: "ready", attempt: 1, steps: {}, message: "prepared in 1.0s" } }
        }))
      })).pipe(Effect.provide(fakeConsul(puts)))
    )
    assert.ok(puts.length >= 1 && puts.length <= 2, `${puts.length} writes`)
    const last = JSON.parse(puts.at(-1)!.value)
    assert.equal(puts.at(-1)!.key, "sacar/shop/status/web-1")
    assert.equal(last.node, "web-1")
    assert.equal(last.releases[A].phase, "ready")
    assert.equal(last.current, null)
    assert.equal(last.deploy, null)
    assert.ok(!Number.isNaN(Date.parse(last.updatedAt)))
  })

  test("nothing changed since the state read back at start: no write", async () => {
    const puts: Array<{ key: string; value: string }> = []
    await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const writer = yield* makeStatusWriter({
          key: "k",
          initial: emptyStatus("web-1", "2026-01-01T00:00:00.000Z"),
          stored: true,
          intervalMs: 50
        })
        yield* writer.update((s) => s)
        yield* writer.flush
      })).pipe(Effect.provide(fakeConsul(puts)))
    )
    assert.equal(puts.length, 0)
  })

  test("flush writes now, and a failed write is retried", async () => {
    const puts: Array<{ key: string; value: string }> = []
    await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const writer = yield* makeStatusWriter({
          key: "k",
          initial: emptyStatus("web-1", "2026-01-01T00:00:00.000Z"),
          stored: true,
          intervalMs: 10_000
        })
        yield* writer.update((s) => ({ ...s, current: A }))
        yield* writer.flush
        assert.equal(puts.length, 1)
        assert.equal(JSON.parse(puts[0]!.value).current, A)
      })).pipe(Effect.provide(fakeConsul(puts, 2)))
    )
  })
})

test("a status Consul does not have yet is written at once", async () => {
  const puts: Array<{ key: string; value: string }> = []
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      yield* makeStatusWriter({
        key: "k",
        initial: emptyStatus("web-1", "2026-01-01T00:00:00.000Z"),
        stored: false,
        intervalMs: 50
      })
      yield* Effect.sleep(100)
    })).pipe(Effect.provide(fakeConsul(puts)))
  )
  assert.equal(puts.length, 1)
  assert.deepEqual(JSON.parse(puts[0]!.value).releases, {})
})

test("the first change after a quiet spell is written at once; a burst right after a write waits for the interval", async () => {
  const puts: Array<{ key: string; value: string }> = []
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const writer = yield* storedWriter(400)
      yield* writer.update(phase("pending"))
      yield* settle
      assert.equal(puts.length, 1, "the first change is written without waiting")

      yield* writer.update(phase("download"))
      yield* writer.update(phase("extract"))
      yield* settle
      assert.equal(puts.length, 1, "changes right after a write wait for the interval")
      yield* TestClock.adjust(400)
      yield* settle
      assert.equal(puts.length, 2, "the burst is one write at the end of the interval")
      assert.equal(JSON.parse(puts[1]!.value).releases[A].phase, "extract")

      // A quiet spell, then an update that changes nothing and one that does, at the same moment.
      yield* TestClock.adjust(5_000)
      yield* writer.update((s) => s)
      yield* settle
      yield* writer.update(phase("pending"))
      yield* settle
      assert.equal(puts.length, 3, "an update that changed nothing does not hold back the next change")
    })).pipe(Effect.provide(Layer.merge(fakeConsul(puts), TestClock.layer())))
  )
})

test("the first change after a quiet spell is sent by the update itself, before the caller's next step", async () => {
  // A node that takes a release up reports it before doing anything else for it: the PUT
  // must not wait for the writer's own fiber to be scheduled after the caller's work.
  const puts: Array<{ key: string; value: string }> = []
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const writer = yield* storedWriter(400)
      yield* writer.update(phase("pending"))
      assert.equal(puts.length, 1, "the PUT was not sent by the update")
      assert.equal(JSON.parse(puts[0]!.value).releases[A].phase, "pending")
      // Right after it, a burst still waits for the interval, and is written once.
      yield* writer.update(phase("download"))
      yield* writer.update(phase("extract"))
      assert.equal(puts.length, 1)
      yield* TestClock.adjust(400)
      yield* settle
      assert.equal(puts.length, 2)
      assert.equal(JSON.parse(puts[1]!.value).releases[A].phase, "extract")
    })).pipe(Effect.provide(Layer.merge(fakeConsul(puts), TestClock.layer())))
  )
})

test("settled waits for Consul's answer to the write on its way, and is done at once when none is", async () => {
  // A node starts preparing a release only once Consul has its report of taking it up
  // (actions.ts): `settled` is how it knows.
  const answer = Promise.withResolvers<void>()
  const puts: string[] = []
  const slowConsul = consulStandIn("the status writer", {
    put: (_key, value) =>
      Effect.promise(() => answer.promise).pipe(Effect.andThen(Effect.sync(() => puts.push(value))), Effect.as(true))
  })
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const writer = yield* storedWriter(400)
      const before = yield* writer.settled.pipe(Effect.timeoutOption(0))
      assert.equal(before._tag, "Some", "nothing on its way: settled at once")
      yield* writer.update(phase("pending"))
      const waiting = yield* writer.settled.pipe(Effect.timeoutOption(50))
      assert.equal(waiting._tag, "None", "settled before Consul answered the write")
      answer.resolve()
      yield* writer.settled
      assert.equal(puts.length, 1)
      assert.equal(JSON.parse(puts[0]!).releases[A].phase, "pending")
    })).pipe(Effect.provide(slowConsul))
  )
})

test("the written document is the Schema encoding of the status, every field set", async () => {
  const puts: Array<{ key: string; value: string }> = []
  const full: NodeStatus = {
    node: "web-1",
    updatedAt: "2026-12-02T05:00:00.000Z",
    releases: {
      [A]: {
        phase: "failed",
        message: "pip failed",
        attempt: 2,
        specIndex: 7,
        startedAt: "2026-12-02T04:59:00.000Z",
        finishedAt: "2026-12-02T05:00:00.000Z",
        steps: { download: { ms: 12 }, install: { ms: 3400, reusedFrom: "b".repeat(40) } },
        log: "Traceback…\n"
      }
    },
    current: A,
    previous: null,
    deploy: {
      generation: 9,
      sha: A,
      phase: "failed",
      message: "health check failed",
      startedAt: "2026-12-02T04:59:30.000Z",
      finishedAt: "2026-12-02T05:00:00.000Z",
      log: "tail"
    },
    error: "config does not decode"
  }
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const writer = yield* makeStatusWriter({ key: "sacar/shop/status/web-1", initial: full, stored: false })
        yield* writer.flush
      })
    ).pipe(Effect.provide(fakeConsul(puts)))
  )
  const written = JSON.parse(puts[0]!.value) as NodeStatus
  assert.equal(puts[0]!.value, encodeDocument(NodeStatus, { ...full, updatedAt: written.updatedAt }))
})
