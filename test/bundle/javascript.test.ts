// The dist's source is Sacar's TypeScript with the types stripped at build time: the
// code keeps every line and column, its relative imports name the `.js` files, and
// syntax that cannot be stripped stops the build with the file's name.
import assert from "node:assert/strict"
import { test } from "node:test"
import { DistError } from "../../src/bundle/errors.ts"
import { javaScriptPath, toJavaScript } from "../../src/bundle/javascript.ts"

const source = [
  "#!/usr/bin/env node",
  "import { type Keys, makeKeys } from \"../spec/keys.ts\"",
  "import type { Tree } from \"./tree.ts\"",
  "export { plan } from './plan.ts'",
  "export type { AppDisk } from \"./plan.ts\"",
  "import \"./side-effect.ts\"",
  "const load = () => import(\"./commands/status.ts\")",
  "const bin: string = \"../../bin/sacar.ts\"",
  "import * as Effect from \"effect/Effect\"",
  "export const keys = (prefix: string): Keys => makeKeys(prefix) as Keys",
  ""
].join("\n")

test("types are stripped in place and relative .ts imports point at the .js files", () => {
  const js = toJavaScript(source, "src/x.ts")
  const lines = js.split("\n")
  assert.equal(lines.length, source.split("\n").length, "every line stays where it was")
  assert.equal(lines[0], "#!/usr/bin/env node")
  assert.match(lines[1]!, /^import \{\s+makeKeys \} from "\.\.\/spec\/keys\.js"$/)
  assert.equal(lines[2]!.trim(), "", "a type-only import goes")
  assert.equal(lines[3], "export { plan } from './plan.js'")
  assert.equal(lines[4]!.trim(), "", "a type-only re-export goes")
  assert.equal(lines[5], "import \"./side-effect.js\"")
  assert.equal(lines[6], "const load = () => import(\"./commands/status.js\")")
  // A string that is not an import is data: it keeps its text.
  assert.match(lines[7]!, /^const bin\s+= "\.\.\/\.\.\/bin\/sacar\.ts"$/)
  assert.equal(lines[8], "import * as Effect from \"effect/Effect\"")
  assert.match(lines[9]!, /^export const keys = \(prefix\s+\)\s+=> makeKeys\(prefix\)\s*$/)
  // Columns are kept too: `makeKeys(prefix)` starts where it did in the TypeScript.
  assert.equal(lines[9]!.indexOf("makeKeys"), source.split("\n")[9]!.indexOf("makeKeys"))
})

test("the stripped module runs", async () => {
  const js = toJavaScript("export const twice = (n: number): number => n * 2\n", "src/twice.ts")
  const mod = await import(`data:text/javascript,${encodeURIComponent(js)}`) as { twice: (n: number) => number }
  assert.equal(mod.twice(21), 42)
})

test("syntax that cannot be stripped stops the build, naming the file", () => {
  assert.throws(
    () => toJavaScript("export enum Phase { Ready }\n", "src/phase.ts"),
    (error: unknown) => error instanceof DistError && /src\/phase\.ts/.test(error.message)
  )
})

test("only .ts names change", () => {
  assert.equal(javaScriptPath("src/reconciler/plan.ts"), "src/reconciler/plan.js")
  assert.equal(javaScriptPath("package.json"), "package.json")
})
