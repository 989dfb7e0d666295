// PUT /v1/txn: KV operations applied all-or-nothing at one index, following
// agent/txn_endpoint.go, agent/consul/txn_endpoint.go and agent/consul/state/txn.go.
// Every op is evaluated and every error collected; any error rolls the whole thing
// back and answers 409.

import type { IncomingMessage, ServerResponse } from "node:http"
import { permissionDenied } from "./acl-endpoint.ts"
import type { RequestAccess } from "./acl-endpoint.ts"
import { HttpError, methodNotAllowed, readBody, readOptions, sendJson } from "./http.ts"
import { field, parseJsonExact } from "./json.ts"
import { entryJson, KV_MAX_VALUE_SIZE } from "./kv-endpoint.ts"
import type { KvTxn, Store, StoreEntry } from "./store.ts"

/** Consul 1.14+ (PR 14599). */
export const TXN_MAX_OPS = 128
/** Consul's default `limits.txn_max_req_len`. */
const TXN_MAX_REQ_LEN = 512 * 1024

const READ_VERBS = new Set(["get", "get-or-empty", "get-tree", "check-index", "check-session", "check-not-exists"])

interface KvOp {
  readonly verb: string
  readonly key: string
  readonly value: Buffer | null
  readonly flags: bigint
  readonly index: bigint
  readonly session: string
}

interface TxnError {
  readonly OpIndex: number
  readonly What: string
}

type TxnReply = { Results: unknown[]; Errors: null } | { Results: null; Errors: TxnError[] }

export async function handleTxn(
  store: Store,
  access: RequestAccess,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL
): Promise<void> {
  if (req.method !== "PUT") throw methodNotAllowed(req.method)
  readOptions(url)
  const ops = decodeOps(await readBody(req, TXN_MAX_REQ_LEN))
  for (const op of ops) access.checkKey(op.key)
  const { authz } = access

  const readOnly = ops.every((op) => READ_VERBS.has(op.verb))
  // Lock-delay is the leader's check before the write is applied.
  const preErrors: TxnError[] = []
  ops.forEach((op, i) => {
    // ACLs first, as kvsPreApply vets each op: gets are filtered on the way out, checks
    // need read, a tree delete needs write on everything under it, the rest need write.
    const denied = op.verb === "get" || op.verb === "get-or-empty" || op.verb === "get-tree"
      ? false
      : op.verb.startsWith("check-")
      ? !authz.allowed("key", op.key, "read")
      : op.verb === "delete-tree"
      ? !authz.keyWritePrefix(op.key)
      : !authz.allowed("key", op.key, "write")
    if (denied) {
      const permission = op.verb.startsWith("check-") ? "read" : "write"
      preErrors.push({ OpIndex: i, What: permissionDenied(authz, "key", permission, op.key).message })
    } else if (op.key === "" && op.verb !== "delete-tree") preErrors.push({ OpIndex: i, What: "Must provide key" })
    else if (op.verb === "lock" && store.lockDelayActive(op.key)) {
      preErrors.push({ OpIndex: i, What: `failed to lock key ${JSON.stringify(op.key)} due to lock delay` })
    }
  })
  if (preErrors.length > 0) return sendJson(res, 409, { Results: null, Errors: preErrors })

  const outcome = store.writeKv<TxnReply>((tx) => {
    const results: unknown[] = []
    const errors: TxnError[] = []
    ops.forEach((op, i) => {
      try {
        results.push(...applyOp(tx, op))
      } catch (e) {
        errors.push({ OpIndex: i, What: (e as Error).message })
      }
    })
    return errors.length > 0
      ? { commit: false, result: { Results: null, Errors: errors } }
      : { commit: !readOnly, result: { Results: results, Errors: null } }
  })
  if (readOnly) {
    // Read-only transactions carry the leader headers but no index: they cannot block.
    res.setHeader("X-Consul-KnownLeader", "true")
    res.setHeader("X-Consul-LastContact", "0")
  }
  if (outcome.Errors !== null) return sendJson(res, 409, outcome)
  const readable = outcome.Results.filter((r) => {
    const key = (r as { KV?: { Key?: string } }).KV?.Key
    return key === undefined || authz.allowed("key", key, "read")
  })
  sendJson(res, 200, { Results: readable, Errors: null })
}

function applyOp(tx: KvTxn, op: KvOp): unknown[] {
  const k = JSON.stringify(op.key)
  const stale = (what: string) => new Error(`failed to ${what} key ${k}, index is stale`)
  const blank = (e: StoreEntry | undefined) => (e === undefined ? [] : [{ KV: entryJson(e, false) }])
  switch (op.verb) {
    case "set":
      return blank(tx.set(op.key, op.value, op.flags))
    case "cas": {
      const r = tx.cas(op.key, op.value, op.flags, op.index)
      if (!r.ok) throw stale("set")
      return blank(r.entry)
    }
    case "lock": {
      if (op.session === "") throw new Error("missing session")
      if (!tx.sessionExists(op.session)) throw new Error(`invalid session ${JSON.stringify(op.session)}`)
      const r = tx.lock(op.key, op.value, op.flags, op.session)
      if (!r.ok) throw new Error(`failed to lock key ${k}, lock is already held`)
      return blank(r.entry)
    }
    case "unlock": {
      if (op.session === "") throw new Error("missing session")
      const r = tx.unlock(op.key, op.value, op.flags, op.session)
      if (!r.ok) throw new Error(`failed to unlock key ${k}, lock isn't held, or is held by another session`)
      return blank(r.entry)
    }
    case "get": {
      const e = tx.get(op.key)
      if (e === undefined) throw new Error(`key ${k} doesn't exist`)
      return [{ KV: entryJson(e) }]
    }
    case "get-or-empty": {
      const e = tx.get(op.key)
      if (e !== undefined) return [{ KV: entryJson(e) }]
      return [
        {
          KV: entryJson({
            key: op.key,
            flags: op.flags,
            value: null,
            session: op.session || undefined,
            lockIndex: 0,
            createIndex: 0,
            modifyIndex: Number(op.index)
          })
        }
      ]
    }
    case "get-tree":
      return tx.list(op.key).map((e) => ({ KV: entryJson(e) }))
    case "check-index": {
      const e = tx.get(op.key)
      if (e === undefined) throw new Error(`failed to check index, key ${k} doesn't exist`)
      if (BigInt(e.modifyIndex) !== op.index) {
        throw new Error(`failed index check for key ${k}, current modify index ${e.modifyIndex} != ${op.index}`)
      }
      return blank(e)
    }
    case "check-session": {
      const e = tx.get(op.key)
      if (e === undefined) throw new Error(`failed to check session, key ${k} doesn't exist`)
      if ((e.session ?? "") !== op.session) {
        throw new Error(
          `failed session check for key ${k}, current session ${JSON.stringify(e.session ?? "")} != ${
            JSON.stringify(op.session)
          }`
        )
      }
      return blank(e)
    }
    case "check-not-exists":
      if (tx.get(op.key) !== undefined) throw new Error(`key ${k} exists`)
      return []
    case "delete":
      tx.delete(op.key)
      return []
    case "delete-tree":
      tx.deleteTree(op.key)
      return []
    case "delete-cas":
      if (!tx.deleteCas(op.key, op.index)) throw stale("delete")
      return []
    default:
      throw new Error(`unknown KV verb ${JSON.stringify(op.verb)}`)
  }
}

const EXACT_FIELDS = new Set(["flags", "index"])

function decodeOps(body: Buffer): KvOp[] {
  let parsed: unknown
  try {
    parsed = parseJsonExact(body.toString("utf8"), EXACT_FIELDS)
  } catch (e) {
    throw new HttpError(400, `Failed to parse body: ${(e as Error).message}`)
  }
  if (!Array.isArray(parsed)) throw new HttpError(400, "Failed to parse body: expected a JSON array of operations")
  if (parsed.length > TXN_MAX_OPS) {
    throw new HttpError(413, `Transaction contains too many operations (${parsed.length} > ${TXN_MAX_OPS})`)
  }
  return parsed.map((raw, i) => {
    const op = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {}
    const kv = field(op, "KV")
    if (typeof kv !== "object" || kv === null) {
      // Node, Service, Check and Session operations are not part of dev-consul.
      throw new HttpError(
        400,
        `Failed to parse body: operation ${i} is not a KV operation (dev-consul supports KV only)`
      )
    }
    const o = kv as Record<string, unknown>
    const value = decodeValue(field(o, "Value"), i)
    if (value !== null && value.length > KV_MAX_VALUE_SIZE) {
      throw new HttpError(
        413,
        `Value for key ${
          JSON.stringify(text(field(o, "Key"), "Key", i))
        } is too large (${value.length} > ${KV_MAX_VALUE_SIZE} bytes)`
      )
    }
    return {
      verb: text(field(o, "Verb"), "Verb", i),
      key: text(field(o, "Key"), "Key", i),
      value,
      flags: uint(field(o, "Flags"), "Flags", i),
      index: uint(field(o, "Index"), "Index", i),
      session: text(field(o, "Session"), "Session", i)
    }
  })
}

function decodeValue(v: unknown, i: number): Buffer | null {
  if (v === undefined || v === null || v === "") return null
  if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
    throw new HttpError(400, `Failed to parse body: operation ${i}: Value must be base64`)
  }
  const b = Buffer.from(v, "base64")
  return b.length > 0 ? b : null
}

// Go's decoder refuses a number or object where a string field stands; so do we, rather
// than turning it into "[object Object]".
function text(v: unknown, name: string, i: number): string {
  if (v === undefined || v === null) return ""
  if (typeof v === "string") return v
  throw new HttpError(400, `Failed to parse body: operation ${i}: ${name} must be a string`)
}

function uint(v: unknown, name: string, i: number): bigint {
  if (v === undefined || v === null) return 0n
  if (typeof v === "bigint" && v >= 0n) return v
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return BigInt(v)
  throw new HttpError(400, `Failed to parse body: operation ${i}: ${name} must be an unsigned integer`)
}
