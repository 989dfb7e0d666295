/**
 * The dist ships Sacar's source as plain JavaScript: each `.ts` file of bin/ and src/
 * with its types stripped at build time, as `.js` next to where the `.ts` was. A
 * process that runs `.ts` files loads Node's TypeScript stripper (about 17 MiB of RSS,
 * kept for the life of the process) whenever its compile cache is empty, so the first
 * start of an installed reconciler would cost that on every machine of the fleet.
 *
 * Node's own stripper does the work (`module.stripTypeScriptTypes`, strip mode: the
 * same transform Node applies when it runs a `.ts` file, so the code that runs is the
 * code the tests ran). Strip mode replaces types with spaces, so every line and column
 * stays where it was in the `.ts` source and stack traces keep pointing at the right
 * place. The output depends only on the input and the Node release (the dist is built
 * with the Node it ships), so the tarball stays reproducible.
 */
import { stripTypeScriptTypes } from "node:module"
import { DistError } from "./errors.ts"

/**
 * Relative module specifiers ending in `.ts` in static imports, re-exports and dynamic
 * `import()` calls with a string literal: how every import in bin/ and src/ is written.
 */
const RELATIVE_TS_SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"'\n]*)\.ts\2/g

/** Where a source file's JavaScript goes: `x.ts` becomes `x.js`, anything else keeps its name. */
export const javaScriptPath = (path: string): string => path.endsWith(".ts") ? `${path.slice(0, -3)}.js` : path

/** The JavaScript Node runs for `source`, with its relative `.ts` imports pointing at the `.js` files. */
export const toJavaScript = (source: string, path: string): string => {
  let stripped: string
  try {
    stripped = stripTypeScriptTypes(source, { mode: "strip" })
  } catch (error) {
    throw new DistError({
      problem: `cannot strip the types of ${path}: ${(error as Error).message} ` +
        "(the dist runs plain JavaScript; only erasable TypeScript syntax can be shipped)"
    })
  }
  return stripped.replace(
    RELATIVE_TS_SPECIFIER,
    (_match, lead: string, quote: string, specifier: string) => `${lead}${quote}${specifier}.js${quote}`
  )
}
