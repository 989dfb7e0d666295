// Rules GitHub enforces that its OpenAPI description does not state (see
// /work/shared/docs/github.md §1, §4, §5): each returns the problems it finds.
import type { OperationId } from "./openapi.ts"

const OUTPUT_MAX_BYTES = 65535
const DESCRIPTION_MAX = 140

type Body = Record<string, unknown>

const isObject = (x: unknown): x is Body => typeof x === "object" && x !== null && !Array.isArray(x)

const checkRunRules = (body: Body, creating: boolean): Array<string> => {
  const problems: Array<string> = []
  const hasConclusion = body["conclusion"] !== undefined && body["conclusion"] !== null
  if ((body["status"] === "completed" || body["completed_at"] !== undefined) && !hasConclusion) {
    problems.push("conclusion is required when status is completed or completed_at is given")
  }
  if (body["conclusion"] === "stale") problems.push("only GitHub may set conclusion stale")
  if (!creating && ["waiting", "requested", "pending"].includes(String(body["status"]))) {
    problems.push(`status ${String(body["status"])} can only be set by GitHub Actions`)
  }
  const output = body["output"]
  if (isObject(output)) {
    for (const field of ["summary", "text"]) {
      const v = output[field]
      if (typeof v === "string" && Buffer.byteLength(v, "utf8") > OUTPUT_MAX_BYTES) {
        problems.push(`output.${field} exceeds a maximum bytesize of ${OUTPUT_MAX_BYTES}`)
      }
    }
    if (typeof output["title"] === "string" && output["title"].trim() === "") problems.push("output.title is empty")
  }
  const actions = body["actions"]
  if (Array.isArray(actions)) {
    if (actions.length > 3) problems.push(`actions: at most 3, got ${actions.length}`)
    for (const [i, a] of actions.entries()) {
      if (!isObject(a)) continue
      for (const [field, max] of [["label", 20], ["description", 40], ["identifier", 20]] as const) {
        const v = a[field]
        if (typeof v === "string" && Array.from(v).length > max) {
          problems.push(`actions[${i}].${field} is longer than ${max} characters`)
        }
      }
    }
  }
  return problems
}

const descriptionRule = (body: Body): Array<string> => {
  const d = body["description"]
  return typeof d === "string" && Array.from(d).length > DESCRIPTION_MAX
    ? [`description is too long (maximum is ${DESCRIPTION_MAX} characters)`]
    : []
}

export const extraProblems = (
  operationId: OperationId,
  params: Readonly<Record<string, string>>,
  body: unknown
): Array<string> => {
  if (!isObject(body)) return []
  switch (operationId) {
    case "checks/create":
      return checkRunRules(body, true)
    case "checks/update":
      return checkRunRules(body, false)
    case "repos/create-deployment-status":
      return descriptionRule(body)
    case "repos/create-commit-status": {
      const sha = params["sha"] ?? ""
      return [...descriptionRule(body), ...(/^[0-9a-f]{40}$/i.test(sha) ? [] : [`No commit found for SHA: ${sha}`])]
    }
    case "repos/create-deployment":
      return descriptionRule(body)
    default:
      return []
  }
}
