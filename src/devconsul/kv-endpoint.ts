// /v1/kv/<key>: GET (plain, recurse, keys, raw; blocking), PUT (flags, cas, acquire,
// release) and DELETE (recurse, cas), following agent/kvs_endpoint.go.

import type { IncomingMessage, ServerResponse } from "node:http"
import { enforce, permissionDenied } from "./acl-endpoint.ts"
import type { RequestAccess } from "./acl-endpoint.ts"
import { blockingQuery, parseBlocking } from "./blocking.ts"
import {
  HttpError,
  methodNotAllowed,
  queryMeta,
  readBody,
  readOptions,
  sendEmpty,
  sendJson,
  sendJsonText
} from "./http.ts"
import { exactUint, parseUint64 } from "./json.ts"
import type { Applied, Interest, Store, StoreEntry } from "./store.ts"

/** Consul's default `limits.kv_max_value_size`. */
export const KV_MAX_VALUE_SIZE = 512 * 1024

/** A KV entry in Consul's JSON shape (`Session` omitted when unheld). */
export function entryJson(e: StoreEntry, withValue = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    LockIndex: e.lockIndex,
    Key: e.key,
    Flags: exactUint(e.flags),
    Value: withValue && e.value !== null && e.value.length > 0 ? e.value.toString("base64") : null
  }
  if (e.session !== undefined) out.Session = e.session
  out.CreateIndex = e.createIndex
  out.ModifyIndex = e.modifyIndex
  return out
}

export async function handleKv(
  store: Store,
  access: RequestAccess,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  key: string
): Promise<void> {
  const consistency = readOptions(url)
  const blocking = parseBlocking(url)
  const q = url.searchParams
  access.checkKey(key)
  const { authz } = access
  // As agent/consul/kvs_endpoint.go: a listing needs `list` on the prefix when
  // enable_key_list_policy is on, and is otherwise filtered to what the token may read.
  const listing = () => {
    if (access.keyListPolicy) enforce(authz, "key", key, "list")
  }
  const readable = (k: string) => authz.allowed("key", k, "read")
  switch (req.method) {
    case "GET":
      if (q.has("keys")) {
        listing()
        return getKeys(store, res, url, key, consistency, blocking, readable)
      }
      if (q.has("recurse")) {
        listing()
        return getTree(store, res, key, consistency, blocking, readable)
      }
      enforce(authz, "key", key, "read")
      return getOne(store, res, url, key, consistency, blocking)
    case "PUT":
      enforce(authz, "key", key, "write")
      return put(store, req, res, url, key)
    case "DELETE":
      if (url.searchParams.has("recurse")) {
        if (!authz.keyWritePrefix(key)) throw permissionDenied(authz, "key", "write", key)
      } else enforce(authz, "key", key, "write")
      return del(store, res, url, key)
    default:
      throw methodNotAllowed(req.method)
  }
}

type Consistency = ReturnType<typeof readOptions>
type Blocking = ReturnType<typeof parseBlocking>

async function getOne(
  store: Store,
  res: ServerResponse,
  url: URL,
  key: string,
  consistency: Consistency,
  blocking: Blocking
): Promise<void> {
  requireKey(key)
  const result = await blockingQuery(
    store,
    res,
    blocking,
    () =>
      store.memo(`get\0${key}`, () => {
        const entry = store.getEntry(key)
        return {
          entry,
          index: entry !== undefined ? entry.modifyIndex : store.kvIndex,
          body: Buffer.from(entry !== undefined ? JSON.stringify([entryJson(entry)]) : "")
        }
      }),
    // A missing key reports the whole table's index; it is woken by writes near it, and
    // Consul then finds it still missing and keeps waiting (blocking.ts).
    (current) => current.entry === undefined ? nearby(store, key) : { kind: "key", key },
    (current) => current.entry === undefined
  )
  if (result === undefined) return
  const meta = queryMeta(result.index, consistency)
  const entry = result.entry
  if (entry === undefined) return sendEmpty(res, 404, meta)
  if (url.searchParams.has("raw")) {
    const body = entry.value ?? Buffer.alloc(0)
    res.writeHead(200, [
      ...meta,
      "Content-Type",
      "text/plain",
      "Content-Length",
      String(body.length),
      "X-Content-Type-Options",
      "nosniff",
      "Content-Security-Policy",
      "sandbox"
    ])
    res.end(body)
    return
  }
  sendJsonText(res, 200, result.body, meta)
}

async function getTree(
  store: Store,
  res: ServerResponse,
  prefix: string,
  consistency: Consistency,
  blocking: Blocking,
  readable: (key: string) => boolean
): Promise<void> {
  const result = await blockingQuery(
    store,
    res,
    blocking,
    () =>
      store.memo(`tree\0${prefix}`, () => {
        const list = store.list(prefix)
        return { ...list, body: Buffer.from(JSON.stringify(list.entries.map((e) => entryJson(e)))) }
      }),
    prefixMayMove(store, prefix)
  )
  if (result === undefined) return
  const meta = queryMeta(result.index, consistency)
  const entries = result.entries.filter((e) => readable(e.key))
  if (entries.length === 0) return sendEmpty(res, 404, meta)
  // The shared body serves every watcher when nothing was filtered out (always without ACLs).
  sendJsonText(
    res,
    200,
    entries.length === result.entries.length ? result.body : JSON.stringify(entries.map((e) => entryJson(e))),
    meta
  )
}

async function getKeys(
  store: Store,
  res: ServerResponse,
  url: URL,
  prefix: string,
  consistency: Consistency,
  blocking: Blocking,
  readable: (key: string) => boolean
): Promise<void> {
  // Consul accepts its historic misspelling too; the correct spelling wins.
  const q = url.searchParams
  const separator = q.get("separator") ?? q.get("seperator") ?? ""
  const result = await blockingQuery(
    store,
    res,
    blocking,
    () => store.memo(`keys\0${separator}\0${prefix}`, () => listKeys(store, prefix, separator)),
    prefixMayMove(store, prefix)
  )
  if (result === undefined) return
  const meta = queryMeta(result.index, consistency)
  const keys = result.keys.filter(readable)
  if (keys.length === 0 && prefix !== "") return sendEmpty(res, 404, meta)
  sendJson(res, 200, keys, meta)
}

function listKeys(store: Store, prefix: string, separator: string) {
  const list = store.list(prefix)
  const keys: string[] = []
  for (const e of list.entries) {
    let k = e.key
    if (separator !== "") {
      const at = k.indexOf(separator, prefix.length)
      if (at >= 0) k = k.slice(0, at + separator.length)
    }
    if (keys[keys.length - 1] !== k) keys.push(k)
  }
  return { index: list.index, own: list.own, keys }
}

/**
 * What a missing key (or a prefix with nothing under it) waits for. It reports the
 * whole table's index, so any write moves that, but Consul wakes it only through the
 * watch of the nearest node of its radix tree: the subtree of the existing keys that
 * share the longest prefix with it. So a key that other keys extend (a missing
 * `<app>/lock` beside `<app>/locks/…`) waits for writes under its own name, which is
 * all that subtree can hold; any other waits for writes in its folder, its path up to
 * its last "/" (Consul's node may lie higher, when nothing else is in the folder: a
 * client takes every wake-up as "read again", never as news). Its own creation always
 * wakes it; a write in another app's folder, or of another node's status, does not.
 * Waking on every KV write instead made each write anywhere answer every watcher of a
 * missing `lock` key in every app.
 */
export function nearby(store: Store, key: string): Interest {
  if (key !== "" && store.hasKeysUnder(key)) return { kind: "prefix", prefix: key }
  const end = key.endsWith("/") ? key.length - 1 : key.length
  return { kind: "prefix", prefix: key.slice(0, key.lastIndexOf("/", end - 1) + 1) }
}

/** A prefix with entries or tombstones moves with writes under it; one without, with writes near it. */
function prefixMayMove(store: Store, prefix: string) {
  return (current: { own: boolean }): Interest => current.own ? { kind: "prefix", prefix } : nearby(store, prefix)
}

async function put(store: Store, req: IncomingMessage, res: ServerResponse, url: URL, key: string): Promise<void> {
  requireKey(key)
  const q = url.searchParams
  refuseConflicting(url, ["cas", "acquire", "release"])
  const flags = q.has("flags") ? uint64Param(q.get("flags") ?? "") : 0n
  const casIndex = q.has("cas") ? uint64Param(q.get("cas") ?? "") : undefined
  const body = await readBody(req, KV_MAX_VALUE_SIZE)
  const value = body.length > 0 ? body : null

  if (q.has("acquire")) {
    const session = q.get("acquire") ?? ""
    // Consul's leader checks lock-delay before anything else, and answers false.
    if (store.lockDelayActive(key)) return sendJson(res, 200, false)
    requireSession(store, session)
    return sendJson(res, 200, store.writeKv((tx) => applied(tx.lock(key, value, flags, session))))
  }
  if (q.has("release")) {
    const session = q.get("release") ?? ""
    if (session === "") throw new HttpError(500, "missing session")
    return sendJson(res, 200, store.writeKv((tx) => applied(tx.unlock(key, value, flags, session))))
  }
  if (casIndex !== undefined) {
    return sendJson(res, 200, store.writeKv((tx) => applied(tx.cas(key, value, flags, casIndex))))
  }
  store.writeKv((tx) => ({ commit: true, result: tx.set(key, value, flags) }))
  sendJson(res, 200, true)
}

async function del(store: Store, res: ServerResponse, url: URL, key: string): Promise<void> {
  const q = url.searchParams
  refuseConflicting(url, ["recurse", "cas"])
  if (q.has("recurse")) {
    store.writeKv((tx) => ({ commit: true, result: tx.deleteTree(key) }))
    return sendJson(res, 200, true)
  }
  requireKey(key)
  if (q.has("cas")) {
    const casIndex = uint64Param(q.get("cas") ?? "")
    const ok = store.writeKv((tx) => {
      const done = tx.deleteCas(key, casIndex)
      return { commit: done, result: done }
    })
    return sendJson(res, 200, ok)
  }
  store.writeKv((tx) => ({ commit: true, result: tx.delete(key) }))
  sendJson(res, 200, true)
}

function applied(outcome: Applied): { commit: boolean; result: boolean } {
  return { commit: outcome.ok, result: outcome.ok }
}

export function requireSession(store: Store, session: string): void {
  if (session === "") throw new HttpError(500, "missing session")
  if (store.getSession(session) === undefined) throw new HttpError(500, `invalid session ${JSON.stringify(session)}`)
}

function requireKey(key: string): void {
  if (key === "") throw new HttpError(400, "Missing key name")
}

function refuseConflicting(url: URL, flags: readonly string[]): void {
  const present = flags.filter((f) => url.searchParams.has(f))
  if (present.length > 1) {
    const sorted = new URLSearchParams([...url.searchParams].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    throw new HttpError(400, `Conflicting flags: ${sorted.toString()}`)
  }
}

function uint64Param(text: string): bigint {
  const n = parseUint64(text)
  if (n === undefined) throw new HttpError(500, `strconv.ParseUint: parsing ${JSON.stringify(text)}: invalid syntax`)
  return n
}
