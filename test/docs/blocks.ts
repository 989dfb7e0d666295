/**
 * The fenced blocks of the project's documentation, sorted into commands to run and
 * command synopses to check against `--help`. Diagrams, file trees and JSON are neither.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"

export interface Block {
  /** "docs/operations.md:138" */
  readonly where: string
  readonly kind: "commands" | "synopsis"
  /** Commands with their `\` continuations joined; comments dropped. */
  readonly lines: ReadonlyArray<string>
}

const COMMAND_START = /^(npx|sacar|consul|nomad|curl|make|git|mkdir|tar|cp|export|apps=|[A-Za-z_]+=\S*)(\s|$)/

const commandLines = (body: string): string[] => {
  const joined = body.replace(/\\\n\s*/g, "")
  return joined.split("\n").map((l) => l.replace(/^\s+/, "")).filter((l) => l !== "" && !l.startsWith("#"))
}

export const docFiles = (root: string): string[] => [
  join(root, "README.md"),
  ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => join(root, "docs", f)),
  join(root, "examples", "README.md")
]

export const blocksOf = (root: string, file: string): Block[] => {
  const text = readFileSync(file, "utf8")
  const blocks: Block[] = []
  for (const m of text.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)) {
    const lang = m[1]!
    const where = `${relative(root, file)}:${text.slice(0, m.index).split("\n").length}`
    const lines = commandLines(m[2]!)
    if (lines.length === 0 || /[─│┌└▶◀]/.test(m[2]!)) continue
    if (lang !== "" && !["sh", "bash", "shell", "console"].includes(lang)) continue
    // A command list: `sacar ...` usage lines, each perhaps followed by indented prose.
    const raw = m[2]!.split("\n").filter((l) => l.trim() !== "")
    if (
      raw.every((l) =>
        (l.startsWith("sacar ") && /[[<|]|^sacar --version$/.test(l)) ||
        (/^\s/.test(l) && !l.trim().startsWith("sacar "))
      )
    ) {
      blocks.push({ where, kind: "synopsis", lines })
      continue
    }
    if (lang !== "" || COMMAND_START.test(lines[0]!)) blocks.push({ where, kind: "commands", lines })
  }
  return blocks
}
