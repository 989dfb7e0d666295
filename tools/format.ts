/**
 * The formatter: dprint's TypeScript and JSON plugins (the formatter Effect uses), run
 * through dprint's own WebAssembly host (`@dprint/formatter`) with the settings in
 * dprint.json. Not the `dprint` CLI: its npm package pulls a native binary per platform,
 * and a lock file that lists them all cannot be installed where the registry lacks one.
 *
 *   node tools/format.ts          format every tracked .ts and .json file in place
 *   node tools/format.ts --check  list the files that are not formatted; exit 1 if any
 */
import { createFromBuffer, type Formatter } from "@dprint/formatter"
import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { extname, join } from "node:path"

interface Settings {
  readonly lineWidth: number
  readonly indentWidth: number
  readonly typescript: Record<string, unknown>
  readonly json: Record<string, unknown>
  readonly excludes: ReadonlyArray<string>
}

const root = process.cwd()
const check = process.argv.includes("--check")
const settings = JSON.parse(readFileSync(join(root, "dprint.json"), "utf8")) as Settings

const plugin = (name: string, config: Record<string, unknown>): Formatter => {
  const formatter = createFromBuffer(readFileSync(join(root, "node_modules", "@dprint", name, "plugin.wasm")))
  formatter.setConfig({ lineWidth: settings.lineWidth, indentWidth: settings.indentWidth }, config)
  return formatter
}
const formatters: Record<string, Formatter> = {
  ".ts": plugin("typescript", settings.typescript),
  ".json": plugin("json", settings.json)
}

// dprint.json's excludes are folder or file globs; a leading `**/` or a trailing `/**`
// is all they use, so a path segment match is enough.
const excluded = (path: string): boolean =>
  settings.excludes.some((pattern) => {
    const bare = pattern.replace(/^\*\*\//, "").replace(/\/\*\*$/, "")
    return path === bare || path.startsWith(`${bare}/`) || path.includes(`/${bare}/`) || path.endsWith(`/${bare}`)
  })

const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
  cwd: root,
  encoding: "utf8"
})
  .split("\n")
  .filter((path) => path !== "" && extname(path) in formatters && !excluded(path))

const unformatted: Array<string> = []
for (const path of files) {
  let text: string
  try {
    text = readFileSync(join(root, path), "utf8")
  } catch {
    continue // listed by git but deleted in the work tree
  }
  const formatted = formatters[extname(path)]!.formatText({ filePath: path, fileText: text })
  if (formatted === text) continue
  unformatted.push(path)
  if (!check) writeFileSync(join(root, path), formatted)
}

if (check && unformatted.length > 0) {
  console.error(`Not formatted (run \`make format\`):\n${unformatted.map((p) => `  ${p}`).join("\n")}`)
  process.exit(1)
}
if (!check && unformatted.length > 0) console.log(`Formatted ${unformatted.length} files.`)
