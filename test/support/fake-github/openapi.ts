// GitHub's own OpenAPI description, as the fake's judge of every request. Only the
// dereferenced api.github.com file is read (the package's index loads all ten specs,
// about 1 GB); the operations the fake serves are extracted once per process.
import { Ajv } from "ajv"
import type { ValidateFunction } from "ajv"
import addFormats from "ajv-formats"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"

/** The operations the fake serves, by GitHub's operationId. */
export const SERVED_OPERATIONS = [
  "checks/create",
  "checks/update",
  "checks/list-for-ref",
  "repos/list-deployments",
  "repos/create-deployment",
  "repos/create-deployment-status",
  "repos/create-commit-status",
  "apps/get-repo-installation",
  "apps/create-installation-access-token"
] as const
export type OperationId = (typeof SERVED_OPERATIONS)[number]

export interface Operation {
  readonly operationId: OperationId
  readonly method: string
  readonly pathTemplate: string
  readonly pattern: RegExp
  readonly pathParams: ReadonlyArray<
    { readonly name: string; readonly integer: boolean; readonly validate: ValidateFunction }
  >
  /** undefined when the operation takes no body. */
  readonly validateBody: ValidateFunction | undefined
  readonly bodyRequired: boolean
}

export interface MatchedOperation {
  readonly operation: Operation
  readonly params: Readonly<Record<string, string>>
}

interface SpecParameter {
  readonly name: string
  readonly in: string
  readonly schema?: Record<string, unknown>
}
interface SpecOperation {
  readonly operationId?: string
  readonly parameters?: ReadonlyArray<SpecParameter>
  readonly requestBody?: {
    readonly required?: boolean
    readonly content?: Record<string, { readonly schema?: object }>
  }
}

const specPath = () => {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve("@octokit/openapi/package.json")), "generated", "api.github.com.deref.json")
}

const makeAjv = () => {
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats.default(ajv)
  // OpenAPI number formats Ajv does not know; JSON numbers already carry them.
  ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) })
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) })
  return ajv
}

const templatePattern = (template: string) =>
  new RegExp("^" + template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{([^}]+)\\?\}/g, "(?<$1>[^/]+)") + "$")

const load = async (): Promise<ReadonlyArray<Operation>> => {
  const spec = JSON.parse(await readFile(specPath(), "utf8")) as {
    paths: Record<string, Record<string, SpecOperation>>
  }
  const ajv = makeAjv()
  const wanted = new Set<string>(SERVED_OPERATIONS)
  const ops: Array<Operation> = []
  for (const [pathTemplate, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (op.operationId === undefined || !wanted.has(op.operationId)) continue
      const bodySchema = op.requestBody?.content?.["application/json"]?.schema
      ops.push({
        operationId: op.operationId as OperationId,
        method: method.toUpperCase(),
        pathTemplate,
        pattern: templatePattern(pathTemplate),
        pathParams: (op.parameters ?? []).filter((p) => p.in === "path").map((p) => ({
          name: p.name,
          integer: p.schema?.["type"] === "integer",
          validate: ajv.compile(p.schema ?? {})
        })),
        validateBody: bodySchema ? ajv.compile(bodySchema) : undefined,
        bodyRequired: op.requestBody?.required === true
      })
    }
  }
  const missing = SERVED_OPERATIONS.filter((id) => !ops.some((o) => o.operationId === id))
  if (missing.length > 0) throw new Error(`@octokit/openapi lacks operations ${missing.join(", ")}`)
  return ops
}

let cached: Promise<ReadonlyArray<Operation>> | undefined
/** Parsed once per process (about a second), shared by every fake. */
export const servedOperations = (): Promise<ReadonlyArray<Operation>> => (cached ??= load())

export const matchOperation = (
  ops: ReadonlyArray<Operation>,
  method: string,
  path: string
): MatchedOperation | undefined => {
  for (const operation of ops) {
    if (operation.method !== method) continue
    const m = operation.pattern.exec(path)
    if (m) {
      const params = Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]))
      return { operation, params }
    }
  }
  return undefined
}

const ajvProblems = (where: string, v: ValidateFunction): Array<string> =>
  (v.errors ?? []).map((e) => {
    const extra = e.keyword === "enum"
      ? ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})`
      : ""
    return `${where}${e.instancePath || ""} ${e.message ?? e.keyword}${extra}`
  })

/** What the schema says is wrong with the request; empty when it conforms. */
export const schemaProblems = (m: MatchedOperation, body: unknown): Array<string> => {
  const problems: Array<string> = []
  for (const p of m.operation.pathParams) {
    const raw = m.params[p.name]
    if (raw === undefined) {
      problems.push(`path parameter ${p.name} missing`)
      continue
    }
    const value = p.integer ? (/^-?\d+$/.test(raw) ? Number(raw) : raw) : raw
    if (!p.validate(value)) problems.push(...ajvProblems(`path parameter ${p.name}`, p.validate))
  }
  const v = m.operation.validateBody
  if (v !== undefined) {
    if (body === undefined) {
      if (m.operation.bodyRequired) problems.push("request body required")
    } else if (!v(body)) {
      problems.push(...ajvProblems("body", v))
    }
  }
  return problems
}
