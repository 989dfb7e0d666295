// Consul's ACL rule language (the HCL that `consul acl policy create -rules @file`
// sends), parsed into the rules dev-consul enforces. Follows acl/policy.go: resource
// blocks with a label (`key_prefix "sacar/" { policy = "write" }`), the top-level
// attributes (`operator = "read"`), and the access levels each resource accepts
// (`list` only for keys). Resources dev-consul does not serve (service, agent, event,
// query, ...) are parsed and kept, so real policy files load unchanged.

export type Access = "deny" | "read" | "list" | "write"

export type RuleKind = "key" | "session" | "node" | "service" | "agent" | "event" | "query"

export interface Rule {
  readonly kind: RuleKind
  /** true for `<kind>_prefix`, false for the exact `<kind>` rule. */
  readonly prefix: boolean
  readonly name: string
  readonly access: Access
}

export interface ParsedRules {
  readonly rules: ReadonlyArray<Rule>
  /** Top-level attributes: acl, operator, keyring, mesh, peering. */
  readonly globals: Readonly<Record<string, Access>>
}

/** A policy's rules could not be read; the message is what Consul would say is wrong. */
export class RulesError extends Error {}

const KINDS: ReadonlySet<string> = new Set(["key", "session", "node", "service", "agent", "event", "query"])
const GLOBALS: ReadonlySet<string> = new Set(["acl", "operator", "keyring", "mesh", "peering"])
const ACCESS: ReadonlySet<string> = new Set(["deny", "read", "write", "list"])

type Token =
  | { readonly t: "ident"; readonly v: string; readonly line: number }
  | { readonly t: "string"; readonly v: string; readonly line: number }
  | { readonly t: "punct"; readonly v: "{" | "}" | "=" | ","; readonly line: number }

function tokenize(text: string): Token[] {
  const out: Token[] = []
  let i = 0
  let line = 1
  while (i < text.length) {
    const c = text[i]!
    if (c === "\n") {
      line++
      i++
    } else if (/\s/.test(c)) i++
    else if (c === "#" || (c === "/" && text[i + 1] === "/")) {
      while (i < text.length && text[i] !== "\n") i++
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2)
      if (end < 0) throw new RulesError(`line ${line}: comment not terminated`)
      line += text.slice(i, end).split("\n").length - 1
      i = end + 2
    } else if (c === "{" || c === "}" || c === "=" || c === ",") {
      out.push({ t: "punct", v: c, line })
      i++
    } else if (c === "\"") {
      let v = ""
      i++
      while (i < text.length && text[i] !== "\"") {
        if (text[i] === "\n") throw new RulesError(`line ${line}: string not terminated`)
        if (text[i] === "\\") {
          i++
          const e = text[i]
          v += e === "n" ? "\n" : e === "t" ? "\t" : e ?? ""
        } else v += text[i]
        i++
      }
      if (i >= text.length) throw new RulesError(`line ${line}: string not terminated`)
      i++
      out.push({ t: "string", v, line })
    } else if (/[A-Za-z_]/.test(c)) {
      let v = ""
      while (i < text.length && /[A-Za-z0-9_-]/.test(text[i]!)) v += text[i++]
      out.push({ t: "ident", v, line })
    } else throw new RulesError(`line ${line}: unexpected ${JSON.stringify(c)}`)
  }
  return out
}

/** Parses HCL rules as Consul's policy parser does; throws RulesError. */
export function parseRules(text: string): ParsedRules {
  const tokens = tokenize(text)
  const rules: Rule[] = []
  const globals: Record<string, Access> = {}
  let at = 0
  const next = () => tokens[at++]
  const expect = (v: string) => {
    const tok = next()
    if (tok === undefined || tok.v !== v || tok.t === "string") {
      throw new RulesError(`line ${tok?.line ?? "end"}: expected ${JSON.stringify(v)}`)
    }
  }
  const access = (kind: string, value: string, line: number): Access => {
    if (!ACCESS.has(value) || (value === "list" && kind !== "key")) {
      throw new RulesError(`line ${line}: Invalid ${kind} policy: ${JSON.stringify(value)}`)
    }
    return value as Access
  }
  while (at < tokens.length) {
    const head = next()!
    if (head.t !== "ident") throw new RulesError(`line ${head.line}: expected a resource name`)
    if (tokens[at]?.v === "=") {
      at++
      const value = next()
      if (value?.t !== "string") throw new RulesError(`line ${head.line}: ${head.v} wants a quoted access level`)
      if (!GLOBALS.has(head.v)) throw new RulesError(`line ${head.line}: unknown rule ${JSON.stringify(head.v)}`)
      globals[head.v] = access(head.v, value.v, head.line)
      continue
    }
    const prefix = head.v.endsWith("_prefix")
    const kind = prefix ? head.v.slice(0, -"_prefix".length) : head.v
    if (!KINDS.has(kind)) throw new RulesError(`line ${head.line}: unknown rule ${JSON.stringify(head.v)}`)
    const label = next()
    if (label?.t !== "string") throw new RulesError(`line ${head.line}: ${head.v} wants a quoted name`)
    expect("{")
    let policy: Access | undefined
    while (tokens[at] !== undefined && tokens[at]!.v !== "}") {
      const attr = next()!
      if (attr.t !== "ident") throw new RulesError(`line ${attr.line}: expected an attribute`)
      expect("=")
      const value = next()
      if (value?.t !== "string") throw new RulesError(`line ${attr.line}: ${attr.v} wants a quoted value`)
      if (attr.v === "policy") policy = access(kind, value.v, attr.line)
      // Other attributes (a service's `intentions`) concern resources dev-consul does not serve.
      if (tokens[at]?.v === ",") at++
    }
    expect("}")
    if (policy === undefined)
      throw new RulesError(`line ${head.line}: ${head.v} ${JSON.stringify(label.v)} has no policy`)
    rules.push({ kind: kind as RuleKind, prefix, name: label.v, access: policy })
  }
  return { rules, globals }
}
