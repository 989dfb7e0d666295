// The shop example (examples/shop) packed into a release tarball, offline, for tests
// that need a real artifact: pack tests here, reconciler end-to-end tests elsewhere.
import { mkdir } from "node:fs/promises"
import { join } from "node:path"
import { buildExampleWheels } from "../../examples/wheels.ts"
import { pack } from "../../src/pack/pack.ts"

export const exampleDir = join(import.meta.dirname, "..", "..", "examples", "shop")

/**
 * Writes `<outDir>/shop.tgz` from examples/shop with `--no-index`, taking the example's
 * wheels from a freshly generated find-links directory, so the result does not depend
 * on binaries in git or on any package index.
 */
export async function packExample(outDir: string): Promise<{ path: string; sha256: string; size: number }> {
  const wheels = join(outDir, "example-wheels")
  await mkdir(wheels, { recursive: true })
  await buildExampleWheels(wheels)
  const packed = await pack({
    dir: exampleDir,
    out: join(outDir, "shop.tgz"),
    findLinks: [wheels],
    noIndex: true,
    pythonVersion: undefined,
    env: process.env,
    log: () => {},
  })
  return { path: packed.path, sha256: packed.sha256, size: packed.size }
}
