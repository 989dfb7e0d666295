/**
 * One Consul per test file, a fresh KV prefix per test, and `sacar` against that
 * prefix, plus the raw KV reads and writes a test uses to play the part of a
 * reconciler or of `consul kv put`. The commands a test runs to completion and checks
 * (output, exit code, what they wrote) share one child process (sacar-in-one.ts); what
 * only a process shows (following, signals, an unreachable Consul) uses `runSacar` or
 * its own child.
 */
import assert from "node:assert/strict"
import { after, before } from "node:test"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { Kv } from "../support/kv.ts"
import { sacarInOne } from "../support/sacar-in-one.ts"

export const SHA_A = "a".repeat(40)
export const SHA_B = "b".repeat(40)

let consul: TestConsul | undefined
before(async () => {
  consul = await startConsul()
})
after(() => consul?.close())
const inOne = sacarInOne()
after(() => inOne.close())

export const consulAddr = (): string => {
  if (consul === undefined) throw new Error("Consul is not started yet (call from inside a test)")
  return consul.addr
}

/** The tests' Consul client (test/support/kv.ts) on this file's Consul, by whole key. */
const kv = () => new Kv(consulAddr())

export const kvGet = (key: string): Promise<string | undefined> => kv().text(key)

export const kvPut = async (key: string, value: string): Promise<void> => {
  assert.equal(await kv().put(key, value), true, `PUT ${key}`)
}

export const kvKeys = (prefix: string): Promise<string[]> => kv().keys(`${prefix}/`)

/** A NodeStatus as a reconciler writes it, with the fields a test cares about. */
export const nodeStatus = (node: string, fields: Record<string, unknown>): string =>
  JSON.stringify({ node, updatedAt: new Date().toISOString(), releases: {}, current: null, deploy: null, ...fields })

/** A fresh prefix and a `sacar` bound to it. */
export const world = () => {
  const prefix = randomPrefix()
  const env = () => ({ CONSUL_HTTP_ADDR: consulAddr(), SACAR_PREFIX: prefix, SACAR_USER: "alice" })
  return {
    prefix,
    env,
    sacar: (...args: string[]) => inOne.run(args, env()),
    /** The same command run by another person. */
    sacarAs: (user: string, ...args: string[]) => inOne.run(args, { ...env(), SACAR_USER: user })
  }
}

/** An expected failure is one or two plain lines: never a stack trace. */
export const assertNoStack = (stderr: string, what: string): void => {
  assert.doesNotMatch(stderr, /\n\s+at .+[:(]\d+/, `${what} printed a stack trace:\n${stderr}`)
  assert.doesNotMatch(stderr, /unexpected failure/, `${what}: ${stderr}`)
}
