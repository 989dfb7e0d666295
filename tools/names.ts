/**
 * One name, one meaning: no name is exported from two modules of src/, and no two
 * error classes carry the same `_tag` (a `catchTag` would catch both). Read from the
 * source text, so it runs in well under a second.
 *
 *   node tools/names.ts   list the clashes; exit 1 if any
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

const files = execFileSync("git", ["ls-files", "src/**/*.ts", "src/*.ts"], { encoding: "utf8" })
  .split("\n")
  .filter((f) => f.endsWith(".ts"))

const EXPORT =
  /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:const|let|function\*?|class|interface|type|enum)\s+([A-Za-z_$][\w$]*)/gm
const TAG = /\b(?:TaggedError|TaggedClass|ErrorClass)\s*(?:<[^>]*>)?\s*\(\s*"([^"]+)"/g

const exported = new Map<string, string[]>()
const tagged = new Map<string, string[]>()
const note = (map: Map<string, string[]>, name: string, file: string) => map.set(name, [...(map.get(name) ?? []), file])

for (const file of files) {
  const text = readFileSync(file, "utf8")
  for (const m of text.matchAll(EXPORT)) note(exported, m[1]!, file)
  for (const m of text.matchAll(TAG)) note(tagged, m[1]!, file)
}

/**
 * Every `sacar <command>` module exports `main` (src/cli/commands.ts loads them by that
 * one name): an interface, not a clash.
 */
const SHARED_BY_DESIGN = new Set(["main"])

const clashes = (map: Map<string, string[]>, what: string) =>
  [...map]
    .filter(([name, where]) => where.length > 1 && !SHARED_BY_DESIGN.has(name))
    .map(([name, where]) => `${what} ${name}: ${where.join(", ")}`)

const found = [
  // A type and a value may share a name in one module (a Schema and its type): only
  // names exported from two different modules clash.
  ...clashes(new Map([...exported].map(([name, where]) => [name, [...new Set(where)]])), "exported"),
  // Two classes with one tag clash even in one module.
  ...clashes(tagged, "error tag")
]
for (const line of found) console.log(line)
if (found.length > 0) {
  console.log(`${found.length} clash${found.length === 1 ? "" : "es"}: rename one side (docs/contributing.md, "Style")`)
  process.exit(1)
}
