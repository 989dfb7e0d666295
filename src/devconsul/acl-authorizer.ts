// Decisions over a token's rules, as Consul's acl/policy_authorizer.go makes them:
// rules of all the token's policies are merged (deny wins, otherwise the most
// permissive), an exact rule for a name wins over prefixes, otherwise the longest
// matching prefix decides; no matching rule leaves the decision to
// acl.default_policy. `read` is granted by read, list and write; `list` by list and
// write; `write` by write only.

import type { Access, ParsedRules, RuleKind } from "./acl-rules.ts"

export type Permission = "read" | "list" | "write"

export interface Authorizer {
  /** Whether `permission` on `kind` `name` is granted. */
  allowed(kind: RuleKind, name: string, permission: Permission): boolean
  /** Write on every key under `prefix` (a recursive delete), as KeyWritePrefix decides. */
  keyWritePrefix(prefix: string): boolean
  /** acl:read / acl:write (the ACL HTTP API). */
  acl(permission: "read" | "write"): boolean
  readonly accessorId: string
}

const RANK: Record<Access, number> = { deny: -1, read: 0, list: 1, write: 2 }

/** Merging two rules for the same name: deny wins, then the more permissive. */
const merge = (a: Access | undefined, b: Access): Access =>
  a === undefined ? b : a === "deny" || b === "deny" ? "deny" : RANK[a] >= RANK[b] ? a : b

const grants = (access: Access, permission: Permission): boolean =>
  access !== "deny" && RANK[access] >= RANK[permission]

interface Table {
  readonly exact: Map<string, Access>
  readonly prefix: Map<string, Access>
}

export function allowAll(accessorId: string): Authorizer {
  return { allowed: () => true, keyWritePrefix: () => true, acl: () => true, accessorId }
}

export function policyAuthorizer(
  accessorId: string,
  policies: ReadonlyArray<ParsedRules>,
  defaultAllow: boolean
): Authorizer {
  const tables = new Map<RuleKind, Table>()
  const globals = new Map<string, Access>()
  for (const p of policies) {
    for (const r of p.rules) {
      let t = tables.get(r.kind)
      if (t === undefined) tables.set(r.kind, t = { exact: new Map(), prefix: new Map() })
      const map = r.prefix ? t.prefix : t.exact
      map.set(r.name, merge(map.get(r.name), r.access))
    }
    for (const [name, access] of Object.entries(p.globals)) globals.set(name, merge(globals.get(name), access))
  }

  const lookup = (kind: RuleKind, name: string): Access | undefined => {
    const t = tables.get(kind)
    if (t === undefined) return undefined
    const exact = t.exact.get(name)
    if (exact !== undefined) return exact
    let best: string | undefined
    for (const prefix of t.prefix.keys()) {
      if (name.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix
    }
    return best === undefined ? undefined : t.prefix.get(best)
  }

  return {
    accessorId,
    allowed(kind, name, permission) {
      const access = lookup(kind, name)
      return access === undefined ? defaultAllow : grants(access, permission)
    },
    keyWritePrefix(prefix) {
      const access = lookup("key", prefix)
      if (access !== undefined && access !== "write") return false
      const t = tables.get("key")
      for (const map of t === undefined ? [] : [t.exact, t.prefix]) {
        for (const [name, a] of map) if (name.startsWith(prefix) && a !== "write") return false
      }
      return access === "write" || defaultAllow
    },
    acl(permission) {
      const access = globals.get("acl")
      return access === undefined ? defaultAllow : grants(access, permission)
    }
  }
}
