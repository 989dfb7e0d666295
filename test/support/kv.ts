/**
 * The tests' own Consul client: plain HTTP against the KV and session endpoints, no
 * Sacar code, so what a test writes or reads was not shaped by the code under test.
 * Works against a real Consul as against dev-consul: it sends CONSUL_HTTP_TOKEN as
 * X-Consul-Token when that is set. Keys are relative to `prefix` (a test's
 * randomPrefix()); with no prefix, whole keys.
 */

export interface KvEntry {
  readonly value: string
  readonly session?: string
  readonly modifyIndex: number
}

export class Kv {
  readonly addr: string
  readonly prefix: string
  readonly token: string | undefined
  constructor(addr: string, prefix = "", token = process.env.CONSUL_HTTP_TOKEN || undefined) {
    this.addr = addr
    this.prefix = prefix
    this.token = token
  }

  key(rest: string) {
    return this.prefix === "" ? rest : `${this.prefix}/${rest}`
  }

  /** One request; a failure status throws with Consul's answer, 404 is the caller's to read. */
  private async call(method: string, path: string, body?: string): Promise<Response> {
    const res = await fetch(`${this.addr}${path}`, {
      method,
      ...(body === undefined ? {} : { body }),
      headers: this.token === undefined ? {} : { "X-Consul-Token": this.token }
    })
    if (!res.ok && res.status !== 404) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
    return res
  }

  /** As `consul kv put KEY VALUE` does: a raw PUT (objects as JSON). False when a CAS or acquire was refused. */
  async put(rest: string, value: string | object, options: { acquire?: string } = {}): Promise<boolean> {
    const body = typeof value === "string" ? value : JSON.stringify(value)
    const query = options.acquire === undefined ? "" : `?acquire=${options.acquire}`
    const res = await this.call("PUT", `/v1/kv/${this.key(rest)}${query}`, body)
    return (await res.text()).trim() === "true"
  }

  async delete(rest: string, recurse = false): Promise<void> {
    await this.call("DELETE", `/v1/kv/${this.key(rest)}${recurse ? "?recurse" : ""}`)
  }

  /** The entry with its value decoded, or undefined when there is no such key. */
  async raw(rest: string): Promise<KvEntry | undefined> {
    const res = await this.call("GET", `/v1/kv/${this.key(rest)}`)
    if (res.status === 404) return undefined
    const [entry] = (await res.json()) as Array<{ Value: string | null; Session?: string; ModifyIndex: number }>
    return entry === undefined ? undefined : decode(entry)
  }

  /** The value as text, or undefined when there is no such key. */
  async text(rest: string): Promise<string | undefined> {
    return (await this.raw(rest))?.value
  }

  async json<T = any>(rest: string): Promise<T | undefined> {
    const entry = await this.raw(rest)
    return entry === undefined ? undefined : (JSON.parse(entry.value) as T)
  }

  /** Every key that starts with `rest` (end it with "/" for a folder), whole, as Consul lists them. */
  async keys(rest: string): Promise<string[]> {
    const res = await this.call("GET", `/v1/kv/${this.key(rest)}?keys`)
    return res.status === 404 ? [] : ((await res.json()) as string[])
  }

  /** Every entry whose key starts with `rest` (end it with "/" for a folder), by whole key. */
  async list(rest: string): Promise<Map<string, KvEntry>> {
    const res = await this.call("GET", `/v1/kv/${this.key(rest)}?recurse=true`)
    const out = new Map<string, KvEntry>()
    if (res.status === 404) return out
    const entries = (await res.json()) as Array<{ Key: string; Value: string | null; ModifyIndex: number }>
    for (const e of entries) out.set(e.Key, decode(e))
    return out
  }

  /** A NodeStatus document, as a reconciler writes it. */
  status(app: string, node: string) {
    return this.json<any>(`${app}/status/${node}`)
  }

  /** A session (Consul's create body: Name, TTL, Behavior, LockDelay ...); its ID. */
  async createSession(body: Record<string, unknown>): Promise<string> {
    const res = await this.call("PUT", "/v1/session/create", JSON.stringify(body))
    return ((await res.json()) as { ID: string }).ID
  }

  async renewSession(id: string): Promise<void> {
    await this.call("PUT", `/v1/session/renew/${id}`)
  }

  async destroySession(id: string): Promise<void> {
    await this.call("PUT", `/v1/session/destroy/${id}`)
  }
}

const decode = (entry: { Value: string | null; Session?: string; ModifyIndex: number }): KvEntry => ({
  value: entry.Value === null ? "" : Buffer.from(entry.Value, "base64").toString("utf8"),
  ...(entry.Session === undefined ? {} : { session: entry.Session }),
  modifyIndex: entry.ModifyIndex
})
