/**
 * The node's side of the truth: what is under `$SACAR_ROOT/<app>/`. Releases are the
 * sha-named directories of `releases/` (a release is ready when its `.sacar/ready`
 * marker is there); `current` and `previous` are relative symlinks into `releases/`.
 *
 * Links are switched atomically: a new link under a temporary name, renamed over the
 * old one, so a reader (or a crash) only ever sees the old target or the new one.
 * Directories are removed by first renaming them into `<app>/.trash/`, so a half-
 * removed release can never look ready.
 */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { mkdirSync, readdirSync, readlinkSync, renameSync, statSync } from "node:fs"
import { readdir, rename, rm, stat, symlink } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { isSha } from "../spec/names.ts"
import type { AppDisk, DiskRelease } from "./plan.ts"
import { releasePaths } from "./steps/layout.ts"

export type LinkName = "current" | "previous"

export const appDir = (root: string, app: string) => join(root, app)
const trashDir = (root: string, app: string) => join(root, app, ".trash")

const exists = (path: string) => stat(path).then(() => true, () => false)

/** What `read` returns, or `fallback` when the entry went away in between (or cannot be read). */
const orElse = <A>(read: () => A, fallback: A): A => {
  try {
    return read()
  } catch {
    return fallback
  }
}

/** The sha a link points at, when it points at a release directory. */
const releaseLinkTarget = (path: string): string | null =>
  orElse(() => {
    const target = readlinkSync(path)
    const sha = basename(target)
    return isSha(sha) && basename(dirname(target)) === "releases" ? sha : null
  }, null)

/**
 * One look at `<app>/`: a readdir of the app folder, then only what it shows exists
 * (the releases folder, the links), each ready marker by a stat that does not throw
 * when the marker is missing. What cannot be read counts as absent, as before.
 * The loop runs this on every pass, so it is synchronous and exception-free: these are
 * a handful of local metadata calls (microseconds each), and going through the thread
 * pool with a promise and an ENOENT exception per missing link cost more CPU than the
 * calls themselves (a tenth of a reaction's CPU, bench/latency.ts).
 */
export const observeDisk = (root: string, app: string): Effect.Effect<AppDisk> =>
  Effect.sync(() => {
    const releases = new Map<string, DiskRelease>()
    let current: string | null = null
    let previous: string | null = null
    const dir = appDir(root, app)
    for (const entry of orElse(() => readdirSync(dir, { withFileTypes: true }), [])) {
      if (entry.name === "current" && entry.isSymbolicLink()) current = releaseLinkTarget(join(dir, "current"))
      else if (entry.name === "previous" && entry.isSymbolicLink()) previous = releaseLinkTarget(join(dir, "previous"))
      else if (entry.name === "releases" && entry.isDirectory()) {
        for (const sha of orElse(() => readdirSync(join(dir, "releases")), []).filter(isSha)) {
          const marker = join(releasePaths(root, app, sha).meta, "ready")
          releases.set(sha, { ready: orElse(() => statSync(marker, { throwIfNoEntry: false }) !== undefined, false) })
        }
      }
    }
    return { releases, current, previous }
  })

export const isReady = (root: string, app: string, sha: string): Effect.Effect<boolean> =>
  Effect.promise(() => exists(join(releasePaths(root, app, sha).meta, "ready")))

/** Points `<app>/<name>` at `releases/<sha>` (relative), atomically. */
export const switchLink = (root: string, app: string, name: LinkName, sha: string): Effect.Effect<void, Error> =>
  Effect.tryPromise({
    try: async () => {
      const dir = appDir(root, app)
      const temp = join(dir, `${name}.tmp-${randomBytes(6).toString("hex")}`)
      await symlink(join("releases", sha), temp)
      try {
        await rename(temp, join(dir, name))
      } catch (error) {
        await rm(temp, { force: true })
        throw error
      }
    },
    catch: (cause) =>
      new Error(`cannot point ${join(appDir(root, app), name)} at releases/${sha}: ${(cause as Error).message}`)
  })

/**
 * Removes a release's directory and whatever its preparation left next to it (the
 * downloaded tarball, partial extractions). Only for releases nobody is preparing.
 * Parking the entries in the trash is a few local metadata calls, made synchronously
 * (as `observeDisk` does); only emptying the trash, a whole tree, goes through the
 * thread pool, and only when something was parked.
 */
export const removeRelease = (root: string, app: string, sha: string): Effect.Effect<void, Error> =>
  Effect.suspend(() => {
    const paths = releasePaths(root, app, sha)
    const trash = trashDir(root, app)
    let parked = 0
    try {
      const names = orElse(() => readdirSync(paths.releasesDir), [] as string[])
      for (const name of names) {
        if (name !== sha && !name.startsWith(`${sha}.`) && !name.startsWith(`.${sha}.`)) continue
        if (parked === 0) mkdirSync(trash, { recursive: true })
        const to = join(trash, `${name}-${randomBytes(4).toString("hex")}`)
        // An entry gone in between (removed by someone else) is removed all the same.
        if (orElse(() => (renameSync(join(paths.releasesDir, name), to), true), false)) parked++
      }
    } catch (cause) {
      return Effect.fail(new Error(`cannot remove release ${sha} of ${app}: ${(cause as Error).message}`))
    }
    if (parked === 0) return Effect.void
    return Effect.tryPromise({
      try: () => emptyTrash(root, app),
      catch: (cause) => new Error(`cannot remove release ${sha} of ${app}: ${(cause as Error).message}`)
    })
  })

/** Leftovers of removals a crash interrupted. */
export const emptyTrash = async (root: string, app: string): Promise<void> => {
  await rm(trashDir(root, app), { recursive: true, force: true, maxRetries: 2 })
}

/** Stray `current.tmp-*` links from a switch a crash interrupted. */
export const tidyLinks = (root: string, app: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const names = await readdir(appDir(root, app)).catch(() => [] as string[])
    await Promise.all(
      names.filter((n) => /^(current|previous)\.tmp-[0-9a-f]+$/.test(n)).map((n) =>
        rm(join(appDir(root, app), n), { force: true })
      )
    )
    await emptyTrash(root, app)
  })

/**
 * An app this node no longer serves keeps only what may be running: the releases
 * `current` and `previous` point at. Everything else of it is removed.
 */
export const pruneUnserved = (root: string, app: string): Effect.Effect<void, Error> =>
  Effect.gen(function*() {
    const disk = yield* observeDisk(root, app)
    for (const sha of disk.releases.keys()) {
      if (sha !== disk.current && sha !== disk.previous) yield* removeRelease(root, app, sha)
    }
  })
