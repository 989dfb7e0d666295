// The npm `consul` client as an application would use it, pointed at startConsul().
// Its d.ts lags its runtime (see /work/shared/docs/consul.md section 7), so the few
// calls the tests make are typed here from what the library actually does.

import Consul from "consul"
import { EventEmitter } from "node:events"
import type { IncomingMessage } from "node:http"
import { after, before } from "node:test"
import { hostPort, startConsul, type TestConsul } from "../support/consul.ts"

export interface KvItem {
  Key: string
  Value: string | null
  Flags: number
  LockIndex: number
  Session?: string
  CreateIndex: number
  ModifyIndex: number
}

export interface SessionItem {
  ID: string
  Name: string
  Node: string
  LockDelay: number
  Behavior: string
  TTL: string
  CreateIndex: number
  ModifyIndex: number
}

export interface ConsulClient {
  kv: {
    get(opts: string | Record<string, unknown>): Promise<any>
    keys(opts: string | Record<string, unknown>): Promise<string[]>
    set(opts: Record<string, unknown>): Promise<boolean | undefined>
    set(key: string, value: string | Buffer): Promise<boolean | undefined>
    del(opts: string | Record<string, unknown>): Promise<boolean | undefined>
  }
  session: {
    create(opts?: Record<string, unknown>): Promise<{ ID: string }>
    destroy(id: string): Promise<unknown>
    info(id: string): Promise<SessionItem | undefined>
    renew(id: string): Promise<SessionItem[]>
    list(): Promise<SessionItem[]>
  }
  transaction: {
    create(ops: unknown[]): Promise<{ Results: Array<{ KV: KvItem }> | null; Errors: unknown }>
  }
  destroy(): void
}

export function client(addr: string): ConsulClient {
  const c = new Consul(hostPort(addr)) as unknown as ConsulClient
  return c
}

/** A ctx that makes node-consul resolve to `[res, data]`, to read X-Consul-Index. */
export function withResponse(): { ctx: EventEmitter & { includeResponse: boolean } } {
  return { ctx: Object.assign(new EventEmitter(), { includeResponse: true }) }
}

export function consulIndex(res: IncomingMessage): number {
  const h = res.headers["x-consul-index"]
  if (typeof h !== "string") throw new Error("response has no X-Consul-Index")
  return Number(h)
}

/** Base64 for txn values, which node-consul sends verbatim. */
export const b64 = (s: string): string => Buffer.from(s).toString("base64")

/**
 * The Consul a describe() block talks to, started before its tests and closed after:
 * `suite.consul` (address, real or not) and `suite.c` (the npm client on it).
 */
export function consulSuite(): { readonly consul: TestConsul; readonly c: ConsulClient } {
  let consul: TestConsul | undefined
  let c: ConsulClient | undefined
  before(async () => {
    consul = await startConsul()
    c = client(consul.addr)
  })
  after(async () => {
    c?.destroy()
    await consul?.close()
  })
  return {
    get consul() {
      if (consul === undefined) throw new Error("consulSuite() used outside its describe block's tests")
      return consul
    },
    get c() {
      if (c === undefined) throw new Error("consulSuite() used outside its describe block's tests")
      return c
    }
  }
}
