/**
 * Turning a KV value into a document, with failures a person can act on: one
 * sentence naming the key, the field and what was wrong, e.g.
 * `sacar/shop/config: "maxParallel" must be a number, got "two"`.
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"

export class DocumentError extends Data.TaggedError("DocumentError")<{
  readonly key: string
  readonly message: string
}> {}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): { found: boolean; value: unknown } => {
  let here: unknown = input
  for (const segment of path) {
    if (here === null || typeof here !== "object" || !(segment in (here as object)))
      return { found: false, value: undefined }
    here = (here as Record<PropertyKey, unknown>)[segment]
  }
  return { found: true, value: here }
}

const describe = (value: unknown): string => {
  const text = JSON.stringify(value)
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1)

/** The one-sentence explanation of why `input` is not a `what`. */
export const explain = (what: string, error: Schema.SchemaError, input: unknown): string => {
  const issues = formatIssues(error.issue).issues
  const parts = issues.slice(0, 3).map((issue) => {
    const path = (issue.path ?? []).map((
      p
    ) => (typeof p === "object" && p !== null && "key" in p ? p.key : p)) as PropertyKey[]
    if (path.length === 0) return lowerFirst(issue.message)
    const field = path.map(String).join(".")
    const at = valueAt(input, path)
    const got = at.found ? `, got ${describe(at.value)}` : " but it is missing"
    return `field "${field}": ${lowerFirst(issue.message)}${/\bgot\b/.test(issue.message) ? "" : got}`
  })
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : ""
  return `not a valid ${what}: ${parts.join("; ")}${more}`
}

/** Decode a raw KV value (a JSON string) into a document of `schema`. */
export const decodeDocument = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  what: string,
  key: string,
  raw: string | null | undefined
): Result.Result<S["Type"], DocumentError> => {
  const text = raw ?? ""
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    const reason = text.trim() === "" ? "the value is empty" : (cause as Error).message
    return Result.fail(
      new DocumentError({ key, message: `${key}: not valid JSON (${reason}); expected a ${what} document` })
    )
  }
  const decoded = Schema.decodeUnknownResult(schema)(json, { errors: "all" })
  return Result.isSuccess(decoded)
    ? Result.succeed(decoded.success)
    : Result.fail(new DocumentError({ key, message: `${key}: ${explain(what, decoded.failure, json)}` }))
}

/**
 * Documents are written compact: every watcher of a key downloads every write of it,
 * and indentation is a quarter of a NodeStatus. The Consul UI and `consul kv get | jq`
 * format JSON for people; `sacar status` reads them for you.
 */
export const encodeDocument = <S extends Schema.Top & { readonly EncodingServices: never }>(
  schema: S,
  value: S["Type"]
): string => JSON.stringify(Schema.encodeSync(schema)(value))
