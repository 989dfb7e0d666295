/**
 * Where a release lives on disk (docs/contract.md §4) and the hidden files Sacar keeps
 * beside and inside it. Temporary names carry the writer's pid, so a later run can
 * tell a dead writer's leftovers from a live writer's work in progress.
 */
import { randomBytes } from "node:crypto"
import { join } from "node:path"

export interface ReleasePaths {
  readonly releasesDir: string
  /** `$SACAR_ROOT/<app>/releases/<sha>`: the extracted tarball. */
  readonly dir: string
  readonly venv: string
  /** `<dir>/.sacar`: markers and the lock. */
  readonly meta: string
  readonly lock: string
  /** Shared, unpacked pip (see src/python/pip.ts). */
  readonly pipCache: string
  /** Downloaded artifacts by sha256 (see steps/download.ts). */
  readonly artifactCache: string
}

export const releasePaths = (root: string, app: string, sha: string): ReleasePaths => {
  const releasesDir = join(root, app, "releases")
  const dir = join(releasesDir, sha)
  const meta = join(dir, ".sacar")
  return {
    releasesDir,
    dir,
    venv: join(dir, ".venv"),
    meta,
    lock: join(meta, "lock"),
    pipCache: join(root, ".sacar", "pip"),
    artifactCache: join(root, ".sacar", "artifacts")
  }
}

/** Names inside the release that belong to Sacar, never to the tarball. */
export const RESERVED_TOP_LEVEL: ReadonlySet<string> = new Set([".sacar", ".venv"])

export const temporaryName = (base: string, kind: "partial" | "extract" | "tmp"): string =>
  `${base}.${process.pid}-${randomBytes(4).toString("hex")}.${kind}`

/** The pid that wrote a temporary name, if it is one. */
export const temporaryOwner = (name: string): number | undefined => {
  const match = /\.(\d+)-[0-9a-f]{8}\.(?:partial|extract|tmp)$/.exec(name)
  return match ? Number(match[1]) : undefined
}
