// A Consul service for one test: startConsul() (real Consul or dev-consul), the
// layer under test on top, a random KV prefix, and everything closed after the test.

import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type * as Scope from "effect/Scope"
import type { TestContext } from "node:test"
import { Consul } from "../../src/consul/consul.ts"
import { consulLayer } from "../../src/consul/http.ts"
import { randomPrefix, startConsul } from "../support/consul.ts"

export interface ConsulForTest {
  readonly addr: string
  readonly real: boolean
  readonly prefix: string
  readonly run: <A, E>(effect: Effect.Effect<A, E, Consul | Scope.Scope>) => Promise<A>
  /** Runs in the background; `interrupt()` closes its scope (finalizers included). */
  readonly fork: <A, E>(effect: Effect.Effect<A, E, Consul | Scope.Scope>) => Forked<A, E>
  /** Runs after the test, while Consul and the layer are still up (t.after would run too late). */
  readonly cleanup: (effect: Effect.Effect<unknown, unknown, Consul>) => void
  readonly consul: Consul["Service"]
}

export interface Forked<A, E> {
  readonly interrupt: () => Promise<void>
  readonly exit: Promise<Exit.Exit<A, E>>
}

export async function consulForTest(
  t: TestContext,
  devConsul: Parameters<typeof startConsul>[0] = {}
): Promise<ConsulForTest> {
  const server = await startConsul(devConsul)
  const runtime = ManagedRuntime.make(consulLayer({ address: server.addr, tls: { verify: true } }))
  const forked: Array<Fiber.Fiber<unknown, unknown>> = []
  const cleanups: Array<Effect.Effect<unknown, unknown, Consul>> = []
  t.after(async () => {
    // Background work first (its finalizers still need Consul), then the layer, then Consul.
    await Effect.runPromise(Fiber.interruptAll(forked))
    for (const effect of cleanups) await runtime.runPromise(Effect.ignore(effect))
    await runtime.dispose()
    await server.close()
  })
  const run = <A, E>(effect: Effect.Effect<A, E, Consul | Scope.Scope>) => runtime.runPromise(Effect.scoped(effect))
  const fork = <A, E>(effect: Effect.Effect<A, E, Consul | Scope.Scope>): Forked<A, E> => {
    const fiber = runtime.runFork(Effect.scoped(effect))
    forked.push(fiber)
    return {
      interrupt: () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined),
      exit: Effect.runPromise(Fiber.await(fiber))
    }
  }
  const consul = await runtime.runPromise(Effect.gen(function*() {
    return yield* Consul
  }))
  const cleanup = (effect: Effect.Effect<unknown, unknown, Consul>) => void cleanups.push(effect)
  return { addr: server.addr, real: server.real, prefix: randomPrefix(), run, fork, cleanup, consul }
}
