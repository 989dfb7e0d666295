// The two tiny libraries the shop example depends on, built as wheels so the example
// installs with no package index. Run `node examples/wheels.ts` to (re)write
// examples/shop/wheels/; the output is byte-identical on every run.
import { join } from "node:path"
import { buildWheel, type WheelSpec } from "../test/support/wheels.ts"

export const exampleWheels: ReadonlyArray<WheelSpec> = [
  {
    name: "textcase",
    version: "1.2",
    summary: "Title-cases text",
    modules: {
      "textcase.py": [
        "\"\"\"Title-casing that keeps short words small.\"\"\"",
        "",
        "SMALL = {\"a\", \"an\", \"and\", \"of\", \"the\", \"to\"}",
        "",
        "",
        "def title(text):",
        "    words = text.split()",
        "    return \" \".join(",
        "        w if i > 0 and w.lower() in SMALL else w[:1].upper() + w[1:]",
        "        for i, w in enumerate(words)",
        "    )",
        ""
      ].join("\n")
    }
  },
  {
    name: "greeting",
    version: "1.0",
    summary: "Greets customers",
    requires: ["textcase>=1.2"],
    modules: {
      "greeting/__init__.py": [
        "\"\"\"Greets a customer by name.\"\"\"",
        "",
        "import textcase",
        "",
        "",
        "def greet(name):",
        "    return \"Welcome to the \" + textcase.title(name) + \"!\"",
        ""
      ].join("\n")
    }
  }
]

export async function buildExampleWheels(dir: string): Promise<string[]> {
  const paths: string[] = []
  for (const spec of exampleWheels) paths.push(await buildWheel({ ...spec, dir }))
  return paths
}

if (import.meta.main) {
  const dir = join(import.meta.dirname, "shop", "wheels")
  for (const path of await buildExampleWheels(dir)) console.log(path)
}
