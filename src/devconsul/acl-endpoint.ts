// ACLs as Consul's acl.enabled = true makes them: tokens resolved from `?token=`,
// `X-Consul-Token` or `Authorization: Bearer` (that order, as agent/http.go's
// parseToken), an unknown secret answered 403 "ACL not found", and policies and
// tokens managed through the same HTTP API `consul acl policy create` and
// `consul acl token create` call (agent/acl_endpoint.go): /v1/acl/policy,
// /v1/acl/policies, /v1/acl/token, /v1/acl/token/self, /v1/acl/tokens.
// dev-consul is a plain node:http server, not an Effect program: its times are `Date`'s.

import { randomUUID } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import { allowAll, policyAuthorizer } from "./acl-authorizer.ts"
import type { Authorizer, Permission } from "./acl-authorizer.ts"
import { parseRules, RulesError } from "./acl-rules.ts"
import type { ParsedRules, RuleKind } from "./acl-rules.ts"
import { HttpError, methodNotAllowed, readBody, sendJson } from "./http.ts"
import { field } from "./json.ts"

export interface AclOptions {
  /** acl.default_policy: what a request no rule speaks for gets. */
  readonly defaultPolicy: "allow" | "deny"
  /** acl.tokens.initial_management: the secret of a token that may do anything. */
  readonly initialManagementToken?: string
  /** acl.enable_key_list_policy: recursive reads and key listings need `list`. */
  readonly enableKeyListPolicy?: boolean
}

interface Policy {
  readonly ID: string
  readonly Name: string
  readonly Description: string
  readonly Rules: string
  readonly parsed: ParsedRules
  readonly CreateIndex: number
  readonly ModifyIndex: number
}

interface Token {
  readonly AccessorID: string
  readonly SecretID: string
  readonly Description: string
  readonly Policies: ReadonlyArray<{ readonly ID: string; readonly Name: string }>
  readonly management: boolean
  readonly CreateTime: string
  readonly CreateIndex: number
  readonly ModifyIndex: number
}

const GLOBAL_MANAGEMENT = { ID: "00000000-0000-0000-0000-000000000001", Name: "global-management" }
const ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"
const MAX_BODY = 512 * 1024

/** What an endpoint needs to know about the request's rights and the keys it may name. */
export interface RequestAccess {
  readonly authz: Authorizer
  /** acl.enable_key_list_policy: recursive reads and key listings need `list` on the prefix. */
  readonly keyListPolicy: boolean
  /** Throws 400 for a key the running Consul version refuses. */
  readonly checkKey: (key: string) => void
  /** Throws 500 for a session Consul would refuse on `node` (unregistered, missing check). */
  readonly checkSessionNode: (node: string, checks: ReadonlyArray<string>) => void
}

/** `Permission denied` as Consul 1.21 words it (acl/errors.go PermissionDeniedByACL). */
export function permissionDenied(authz: Authorizer, kind: string, permission: string, name: string): HttpError {
  return new HttpError(
    403,
    `Permission denied: token with AccessorID '${authz.accessorId}' lacks permission '${kind}:${permission}' on ${
      JSON.stringify(name)
    }`
  )
}

/** Throws 403 unless `permission` on `kind` `name` is granted. */
export function enforce(authz: Authorizer, kind: RuleKind, name: string, permission: Permission): void {
  if (!authz.allowed(kind, name, permission)) throw permissionDenied(authz, kind, permission, name)
}

export class Acl {
  readonly options: AclOptions | undefined
  readonly #policies = new Map<string, Policy>()
  readonly #tokens = new Map<string, Token>()
  #index = 0

  constructor(options: AclOptions | undefined) {
    this.options = options
    if (options?.initialManagementToken !== undefined) {
      this.#tokens.set(options.initialManagementToken, {
        AccessorID: randomUUID(),
        SecretID: options.initialManagementToken,
        Description: "Initial Management Token",
        Policies: [GLOBAL_MANAGEMENT],
        management: true,
        CreateTime: new Date().toISOString(),
        CreateIndex: 1,
        ModifyIndex: 1
      })
    }
  }

  get keyListPolicy(): boolean {
    return this.options?.enableKeyListPolicy === true
  }

  /** The request's authorizer; every request passes here before its endpoint runs. */
  authorize(req: IncomingMessage, url: URL): Authorizer {
    const options = this.options
    if (options === undefined) return allowAll(ANONYMOUS_ACCESSOR)
    const secret = requestToken(req, url)
    if (secret === "") return policyAuthorizer(ANONYMOUS_ACCESSOR, [], options.defaultPolicy === "allow")
    const token = this.#tokens.get(secret)
    if (token === undefined) throw new HttpError(403, "ACL not found")
    if (token.management) return allowAll(token.AccessorID)
    const rules = token.Policies.flatMap((p) => {
      const policy = this.#policies.get(p.ID)
      return policy === undefined ? [] : [policy.parsed]
    })
    return policyAuthorizer(token.AccessorID, rules, options.defaultPolicy === "allow")
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, rest: string, authz: Authorizer): Promise<void> {
    if (this.options === undefined) throw new HttpError(401, "ACL support disabled")
    const [what = "", ...args] = rest.split("/")
    const need = (permission: "read" | "write") => {
      if (!authz.acl(permission)) throw permissionDenied(authz, "acl", permission, "")
    }
    if (what === "policies" || what === "tokens") {
      if (req.method !== "GET") throw methodNotAllowed(req.method)
      need("read")
      return what === "policies"
        ? sendJson(res, 200, [...this.#policies.values()].map(policyJson))
        : sendJson(res, 200, [...this.#tokens.values()].map(tokenJson))
    }
    if (what === "policy") {
      if (req.method === "PUT" && args.length === 0) {
        need("write")
        return sendJson(res, 200, policyJson(this.#savePolicy(await jsonBody(req), undefined)))
      }
      const policy = args[0] === "name" ? this.#policyByName(args[1] ?? "") : this.#policies.get(args[0] ?? "")
      if (req.method === "GET") {
        need("read")
        if (policy === undefined) throw new HttpError(404, "ACL policy not found")
        return sendJson(res, 200, policyJson(policy))
      }
      if (req.method === "PUT") {
        need("write")
        if (policy === undefined) throw new HttpError(400, "Invalid Policy: cannot find policy")
        return sendJson(res, 200, policyJson(this.#savePolicy(await jsonBody(req), policy)))
      }
      if (req.method === "DELETE") {
        need("write")
        if (policy !== undefined) this.#policies.delete(policy.ID)
        return sendJson(res, 200, true)
      }
      throw methodNotAllowed(req.method)
    }
    if (what === "token") {
      if (args[0] === "self") {
        if (req.method !== "GET") throw methodNotAllowed(req.method)
        const token = this.#tokens.get(requestToken(req, url))
        if (token === undefined) throw new HttpError(403, "ACL not found")
        return sendJson(res, 200, tokenJson(token))
      }
      if (req.method === "PUT" && args.length === 0) {
        need("write")
        return sendJson(res, 200, tokenJson(this.#createToken(await jsonBody(req))))
      }
      const token = [...this.#tokens.values()].find((t) => t.AccessorID === args[0])
      if (req.method === "GET") {
        need("read")
        if (token === undefined) throw new HttpError(404, "ACL token not found")
        return sendJson(res, 200, tokenJson(token))
      }
      if (req.method === "DELETE") {
        need("write")
        if (token !== undefined) this.#tokens.delete(token.SecretID)
        return sendJson(res, 200, true)
      }
      throw methodNotAllowed(req.method)
    }
    throw new HttpError(404, "404 page not found")
  }

  #policyByName(name: string): Policy | undefined {
    return [...this.#policies.values()].find((p) => p.Name === name)
  }

  #savePolicy(body: Record<string, unknown>, existing: Policy | undefined): Policy {
    const name = stringField(body, "Name")
    if (name === "") throw new HttpError(400, "Invalid Policy: no name set")
    if (!/^[A-Za-z0-9\-_]{1,128}$/.test(name)) throw new HttpError(400, `Invalid Policy: invalid Name '${name}'`)
    const same = this.#policyByName(name)
    if (same !== undefined && same.ID !== existing?.ID) {
      throw new HttpError(400, `Invalid Policy: A Policy with Name "${name}" already exists`)
    }
    const rules = stringField(body, "Rules")
    let parsed: ParsedRules
    try {
      parsed = parseRules(rules)
    } catch (e) {
      if (e instanceof RulesError) throw new HttpError(400, `Invalid Policy: failed to parse rules: ${e.message}`)
      throw e
    }
    const index = ++this.#index
    const policy: Policy = {
      ID: existing?.ID ?? randomUUID(),
      Name: name,
      Description: stringField(body, "Description"),
      Rules: rules,
      parsed,
      CreateIndex: existing?.CreateIndex ?? index,
      ModifyIndex: index
    }
    this.#policies.set(policy.ID, policy)
    return policy
  }

  #createToken(body: Record<string, unknown>): Token {
    const links = field(body, "Policies")
    const policies = (Array.isArray(links) ? links : []).map((link: unknown) => {
      const l = (link ?? {}) as Record<string, unknown>
      const id = typeof field(l, "ID") === "string" ? field(l, "ID") as string : ""
      const name = typeof field(l, "Name") === "string" ? field(l, "Name") as string : ""
      const policy = id !== "" ? this.#policies.get(id) : this.#policyByName(name)
      if (policy === undefined) {
        throw new HttpError(400, `Invalid Token: cannot find policy ${JSON.stringify(id !== "" ? id : name)}`)
      }
      return { ID: policy.ID, Name: policy.Name }
    })
    const secret = stringField(body, "SecretID") || randomUUID()
    if (this.#tokens.has(secret)) throw new HttpError(400, "Invalid Token: SecretID is already in use")
    const index = ++this.#index
    const token: Token = {
      AccessorID: stringField(body, "AccessorID") || randomUUID(),
      SecretID: secret,
      Description: stringField(body, "Description"),
      Policies: policies,
      management: false,
      CreateTime: new Date().toISOString(),
      CreateIndex: index,
      ModifyIndex: index
    }
    this.#tokens.set(secret, token)
    return token
  }
}

function requestToken(req: IncomingMessage, url: URL): string {
  const query = url.searchParams.get("token")
  if (query !== null && query !== "") return query
  const header = req.headers["x-consul-token"]
  const direct = Array.isArray(header) ? header[0] : header
  if (direct !== undefined && direct.trim() !== "") return direct.trim()
  const auth = req.headers.authorization ?? ""
  const bearer = /^bearer\s+(.+)$/i.exec(auth.trim())
  return bearer?.[1]?.trim() ?? ""
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req, MAX_BODY)
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString("utf8"))
  } catch (e) {
    throw new HttpError(400, `Request decode failed: ${(e as Error).message}`)
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new HttpError(400, "Request decode failed: body is not a JSON object")
  }
  return parsed as Record<string, unknown>
}

function stringField(body: Record<string, unknown>, name: string): string {
  const v = field(body, name)
  if (v === undefined || v === null) return ""
  if (typeof v !== "string") throw new HttpError(400, `Request decode failed: ${name} must be a string`)
  return v
}

function policyJson(p: Policy): Record<string, unknown> {
  return {
    ID: p.ID,
    Name: p.Name,
    Description: p.Description,
    Rules: p.Rules,
    Datacenters: null,
    CreateIndex: p.CreateIndex,
    ModifyIndex: p.ModifyIndex
  }
}

function tokenJson(t: Token): Record<string, unknown> {
  return {
    AccessorID: t.AccessorID,
    SecretID: t.SecretID,
    Description: t.Description,
    Policies: t.Policies,
    Local: false,
    CreateTime: t.CreateTime,
    CreateIndex: t.CreateIndex,
    ModifyIndex: t.ModifyIndex
  }
}
