// The shop example (examples/shop) packed into a release tarball, offline, for tests
// that need a real artifact: pack tests here, reconciler end-to-end tests elsewhere.
// The packing itself is shared with `sacar demo` (src/demo/example.ts).
import { exampleDir, packShopExample } from "../../src/demo/example.ts"

export { exampleDir }

/**
 * Writes `<outDir>/shop.tgz` from examples/shop with `--no-index`: pip sees only the
 * example's committed wheels (test/pack checks they match examples/wheels.ts).
 */
export async function packExample(outDir: string): Promise<{ path: string; sha256: string; size: number }> {
  return packShopExample(outDir)
}
