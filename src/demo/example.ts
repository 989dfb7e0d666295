/**
 * The shop example (examples/shop) packed into a release tarball, offline: the
 * demo's artifact, and the tests' real tarball (test/support/example.ts calls this).
 * The example's wheels are regenerated into a find-links directory first, so the
 * result depends neither on binaries in git nor on any package index.
 */
import { mkdir } from "node:fs/promises"
import { join } from "node:path"
import { buildExampleWheels } from "../../examples/wheels.ts"
import { pack } from "../pack/pack.ts"

export const exampleDir = join(import.meta.dirname, "..", "..", "examples", "shop")

export interface PackedExample {
  readonly path: string
  readonly sha256: string
  readonly size: number
}

/**
 * Writes `<outDir>/shop.tgz` from examples/shop with `--no-index`. `env` is the
 * environment pip runs with (the demo marks its pip so Ctrl-C can find it).
 */
export async function packShopExample(
  outDir: string,
  options: { readonly env?: NodeJS.ProcessEnv; readonly log?: (line: string) => void } = {}
): Promise<PackedExample> {
  const wheels = join(outDir, "example-wheels")
  await mkdir(wheels, { recursive: true })
  await buildExampleWheels(wheels)
  const packed = await pack({
    dir: exampleDir,
    out: join(outDir, "shop.tgz"),
    findLinks: [wheels],
    noIndex: true,
    pythonVersion: undefined,
    env: options.env ?? process.env,
    log: options.log ?? (() => {})
  })
  return { path: packed.path, sha256: packed.sha256, size: packed.size }
}
