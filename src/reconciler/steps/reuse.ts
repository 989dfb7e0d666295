/**
 * Installed dependencies, reused between releases on one node. What pip installed in
 * a release's venv (not what its bin/prepare made of it: saveTemplate) is kept in
 * `$SACAR_ROOT/.sacar/venvs/<digest>` (digest: dependencies.ts), with the list of its
 * files that name the venv's own path. A later release with the same
 * digest gets a copy of that template, those files rewritten to name its own venv:
 * what pip would have installed, without running pip.
 *
 * Copies, not hard links: a hard link shares the inode, so a `bin/prepare` writing a
 * file in place (or a chmod) in one release would change the template and every other
 * release (the links saveTemplate makes live only until the copy is taken, and are
 * checked). `cp -a --reflink=auto` shares blocks copy-on-write where the filesystem can
 * (btrfs, XFS) and copies elsewhere; either way each release owns its files, and
 * removing any release (or the template) leaves the others whole. See
 * docs/decisions.md.
 *
 * A template appears by one rename once complete and is never written again, so a
 * reader sees a whole one or none; a dead writer's staging directory is removed by
 * the next writer.
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import {
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
  writeFile
} from "node:fs/promises"
import { dirname, join, relative, resolve } from "node:path"
import { pathExists } from "../../common/files.ts"
import { runProcess } from "../../process/run.ts"
import type { RunAs } from "../app-user.ts"
import { removeLeftovers } from "./download.ts"
import { temporaryName } from "./layout.ts"
import { giveTree } from "./ownership.ts"

/** Where the templates live: `$SACAR_ROOT/.sacar/venvs`. */
export const templateStore = (root: string): string => join(root, ".sacar", "venvs")

export interface Template {
  /** The template's venv, to be copied. */
  readonly venv: string
  /** A copy of `venv` made ahead, which one release takes by renaming it (makeSpare). */
  readonly spare: string
  /** The release whose install made it. */
  readonly from: { readonly app: string; readonly sha: string }
  /** The venv path the files were installed under. */
  readonly prefix: string
  /** Files and links under the venv that name `prefix`, relative. */
  readonly rewrite: ReadonlyArray<{ readonly path: string; readonly kind: "file" | "link" }>
  /** The `RECORD` files that list one of those files with its hash and size. */
  readonly records: ReadonlyArray<string>
}

const isTemplate = (value: unknown): value is Omit<Template, "venv" | "spare"> =>
  typeof value === "object" && value !== null && typeof (value as Template).prefix === "string" &&
  Array.isArray((value as Template).rewrite) && Array.isArray((value as Template).records) &&
  typeof (value as Template).from?.sha === "string"

export const findTemplate = (store: string, digest: string): Effect.Effect<Template | undefined> =>
  Effect.promise(async () => {
    const dir = join(store, digest)
    const meta = await readFile(join(dir, "template.json"), "utf8").then(
      (t) => JSON.parse(t) as unknown,
      () => undefined
    )
    if (!isTemplate(meta)) return undefined
    return { ...meta, venv: join(dir, "venv"), spare: join(dir, "spare") }
  })

/**
 * `cp -a`: modes and times kept (pip's bytecode is checked against its source's mtime),
 * links kept as links. The owner is not kept: a template is the reconciler's whoever
 * installed it (with SACAR_RUN_AS one app's user must not be able to change what
 * another app's release will copy), and a copy is given to its release's user after.
 */
const copyTree = (from: string, to: string, onSpawn?: (pid: number) => void) =>
  runTool("cp", ["-a", "--no-preserve=ownership", "--reflink=auto", "--", from, to], onSpawn)

/** One of the system's file tools (cp, find, sh), with the system's PATH only. */
const runTool = (command: string, args: ReadonlyArray<string>, onSpawn?: (pid: number) => void) =>
  runProcess({
    command,
    args,
    env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    timeoutMs: 300_000,
    ...(onSpawn === undefined ? {} : { onSpawn })
  })

// Each inode under "$1", by number and change time (ctime: any write, chmod, link or
// unlink moves it, and no one can set it back), into "$2": `find` lists two thousand
// files in a few milliseconds.
const LIST_INODES = String.raw`find "$1" -printf '%i %C@ %P\n' > "$2"`

const shell = (script: string, args: ReadonlyArray<string>, onSpawn?: (pid: number) => void) =>
  runTool("sh", ["-c", script, "sh", ...args], onSpawn)

/** `cp -al`: the same tree of directories, every file a hard link to the original's inode; then its inodes into `list`. */
const linkTree = (from: string, to: string, list: string, onSpawn?: (pid: number) => void) =>
  shell(`cp -a -l -- "$3" "$1" && ${LIST_INODES}`, [to, list, from], onSpawn)

const listInodes = (dir: string, list: string) => shell(LIST_INODES, [dir, list])

/** Every file and link under `dir` whose bytes (or target) contain `needle`. */
const namingFiles = async (dir: string, needle: Buffer): Promise<Array<Template["rewrite"][number]>> => {
  const found: Array<Template["rewrite"][number]> = []
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) await walk(path)
      else if (entry.isSymbolicLink()) {
        if ((await readlink(path)).includes(needle.toString())) found.push({ path: relative(dir, path), kind: "link" })
      } else if (entry.isFile() && (await readFile(path)).includes(needle)) {
        found.push({ path: relative(dir, path), kind: "file" })
      }
    }
  }
  await walk(dir)
  return found.sort((a, b) => a.path < b.path ? -1 : 1)
}

/**
 * Keep `venv` (just installed by pip, nothing else run in it) as the template for
 * `digest`, in two parts. First, before bin/prepare can change the venv, a hard-linked
 * copy of it and the change time of every inode: a few milliseconds, where a real copy
 * would hold the release up. The returned effect is the rest, for later (later.ts): a
 * real copy of the linked one, kept only if no inode changed since the links were made
 * (a bin/prepare writing a file of the venv in place writes the linked inode too and
 * moves its ctime, which no one can set back; removing one moves it too, through the
 * link count: such a venv is not kept, and the next release runs pip; a file it adds,
 * or replaces by a rename as pip does, leaves the linked inodes as pip wrote them);
 * then finding the files that name the venv, the rename that publishes the template,
 * and pruning. Best effort: without a template the next release runs pip, nothing
 * worse; a crash leaves a dead writer's staging directory, which the next writer
 * removes. Where links cannot be made (another filesystem) the venv is copied before
 * bin/prepare instead.
 */
export const saveTemplate = (input: {
  readonly store: string
  /** SACAR_ROOT, whose releases say which templates are still wanted. */
  readonly root: string
  readonly digest: string
  readonly venv: string
  readonly from: Template["from"]
  readonly onSpawn?: (pid: number) => void
}): Effect.Effect<Effect.Effect<void>> => {
  const target = join(input.store, input.digest)
  const staging = temporaryName(target, "tmp")
  const links = join(staging, "links")
  const copy = join(staging, "venv")
  const removeStaging = Effect.promise(() => rm(staging, { recursive: true, force: true }))
  const failed = (cause: Cause.Cause<unknown>) =>
    Effect.logWarning("could not keep the venv for reuse", { venv: input.venv, cause })
  const before = join(staging, "inodes")
  const after = join(staging, "inodes.after")
  const finish = (linked: boolean) =>
    Effect.gen(function*() {
      if (linked) {
        yield* copyTree(links, copy)
        yield* listInodes(links, after)
        const unchanged = yield* Effect.promise(async () => (await readFile(before)).equals(await readFile(after)))
        if (!unchanged) {
          yield* Effect.logInfo(
            "not kept for reuse: the venv changed after pip installed it (bin/prepare wrote into it)",
            { venv: input.venv }
          )
          return
        }
        yield* Effect.promise(() => rm(links, { recursive: true, force: true }))
      }
      const rewrite = yield* Effect.promise(() => namingFiles(copy, Buffer.from(input.venv)))
      const records = yield* Effect.promise(() => recordsListing(copy, rewrite))
      const meta: Omit<Template, "venv" | "spare"> = { from: input.from, prefix: input.venv, rewrite, records }
      yield* Effect.promise(() => writeFile(join(staging, "template.json"), JSON.stringify(meta) + "\n"))
      // Another release with the same dependencies may have won the race; theirs is as good.
      yield* Effect.promise(() => rename(staging, target).catch(() => undefined))
      yield* pruneTemplates(input.store, input.root, input.digest)
    }).pipe(
      Effect.catchCause(failed),
      // Whatever happened (a rename leaves nothing to remove): also when the node stops.
      Effect.ensuring(removeStaging)
    )
  return Effect.gen(function*() {
    if ((yield* findTemplate(input.store, input.digest)) !== undefined) return Effect.void
    yield* Effect.promise(() => mkdir(input.store, { recursive: true }))
    yield* removeLeftovers(target)
    yield* Effect.promise(() => mkdir(staging))
    const linked = yield* linkTree(input.venv, links, before, input.onSpawn).pipe(
      Effect.as(true),
      Effect.catch(() =>
        Effect.promise(() => rm(links, { recursive: true, force: true })).pipe(
          Effect.andThen(copyTree(input.venv, copy, input.onSpawn)),
          Effect.as(false)
        )
      )
    )
    return finish(linked)
  }).pipe(
    Effect.onError(() => removeStaging),
    Effect.catchCause((cause) => failed(cause).pipe(Effect.as(Effect.void)))
  )
}

/**
 * Make the template's spare: a whole copy of its venv, put in place by one rename, so
 * that the next release with these dependencies takes it by a rename of its own
 * instead of copying while it waits (copyTemplate). Run beside bin/prepare, which
 * cannot reach it: it copies the template, never a release. Best effort: without a
 * spare the next release copies the template itself.
 */
export const makeSpare = (input: { readonly store: string; readonly digest: string }): Effect.Effect<void> =>
  Effect.gen(function*() {
    const template = yield* findTemplate(input.store, input.digest)
    if (template === undefined || (yield* pathExists(template.spare))) return
    yield* removeLeftovers(template.spare)
    const staging = temporaryName(template.spare, "tmp")
    yield* copyTree(template.venv, staging).pipe(
      // Another preparer's spare may have appeared meanwhile; one is enough.
      Effect.andThen(Effect.promise(() => rename(staging, template.spare).catch(() => undefined))),
      Effect.ensuring(Effect.promise(() => rm(staging, { recursive: true, force: true })))
    )
  }).pipe(
    Effect.catchCause((cause) => Effect.logWarning("could not make a spare copy for reuse", { cause })),
    Effect.asVoid
  )

/**
 * Remove the templates no release on the node was installed with (their `installed`
 * marker names the digest), `keep` aside: one per dependency set in use, not one per
 * set ever seen. A template removed while a preparer copies it only makes that
 * preparer run pip.
 */
const pruneTemplates = (store: string, root: string, keep: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const wanted = new Set([keep])
    const apps = await readdir(root, { withFileTypes: true }).catch(() => [])
    for (const app of apps.filter((a) => a.isDirectory() && !a.name.startsWith("."))) {
      const releases = join(root, app.name, "releases")
      for (const sha of await readdir(releases).catch(() => [] as Array<string>)) {
        const marker = await readFile(join(releases, sha, ".sacar", "installed"), "utf8").catch(() => "")
        const digest = /"digest":"([0-9a-f]{64})"/.exec(marker)?.[1]
        if (digest !== undefined) wanted.add(digest)
      }
    }
    const templates = await readdir(store).catch(() => [] as Array<string>)
    await Promise.all(
      templates.filter((name) => /^[0-9a-f]{64}$/.test(name) && !wanted.has(name)).map((name) =>
        rm(join(store, name), { recursive: true, force: true })
      )
    )
  })

/** Why `template` cannot be copied to a venv at a path of another length, or undefined. */
const unfit = (template: Template, venv: string, binaries: ReadonlyArray<string>): string | undefined =>
  binaries.length > 0
    ? `${binaries[0]} names ${template.prefix} in binary form, and ${venv} has another length`
    : undefined

const isBytecode = (path: string) => path.endsWith(".pyc")

/**
 * Copy `template` into `venv` (which must not exist), or take its spare, and make it
 * name `venv`. Fails
 * (and the caller runs pip instead) when the template went away or cannot be
 * rewritten; a crash half-way leaves a venv without its marker, which the venv step
 * removes.
 */
export const copyTemplate = (input: {
  readonly template: Template
  readonly venv: string
  /** SACAR_RUN_AS: who gets the copy; the reconciler keeps it when undefined. */
  readonly owner?: RunAs | undefined
  readonly onSpawn?: (pid: number) => void
}): Effect.Effect<void, string> =>
  Effect.gen(function*() {
    const { template, venv } = input
    const from = Buffer.from(template.prefix)
    const to = Buffer.from(venv)
    // Console scripts and pyvenv.cfg are text, so any length does. A byte-for-byte swap in
    // other files keeps them valid only at the same length; bytecode is the exception:
    // Python corrects a stale co_filename as it loads it, so a longer path may stay.
    // Only a path of another length needs a look at which files are binary.
    if (from.length !== to.length) {
      const files = yield* Effect.promise(() =>
        Promise.all(
          template.rewrite.filter((r) => r.kind === "file" && !isBytecode(r.path)).map(async (r) => {
            const data = await readFile(join(template.venv, r.path))
            return { path: r.path, binary: data.includes(0) }
          })
        )
      ).pipe(Effect.mapError(() => "the template is gone"))
      const problem = unfit(template, venv, files.filter((f) => f.binary).map((f) => f.path))
      if (problem !== undefined) return yield* Effect.fail(problem)
    }
    // The spare, if there is one, is taken whole by one rename; else the template is copied.
    const tookSpare = yield* Effect.promise(() => rename(template.spare, venv).then(() => true, () => false))
    if (!tookSpare) {
      yield* copyTree(template.venv, venv, input.onSpawn).pipe(
        Effect.mapError((error) => `copying ${template.venv} failed: ${error.message}`)
      )
    }
    yield* Effect.tryPromise({
      try: async () => {
        // Hundreds of files (every bytecode file names its source): many at once, on libuv's threads.
        await inBatches(template.rewrite, 32, async (r) => {
          const path = join(venv, r.path)
          if (r.kind === "link") {
            const target = (await readlink(path)).replaceAll(template.prefix, venv)
            await unlink(path)
            await symlink(target, path)
          } else if (isBytecode(r.path)) {
            if (from.length === to.length) await writeFile(path, replaceAll(await readFile(path), from, to))
          } else {
            const before = await stat(path)
            await writeFile(path, replaceAll(await readFile(path), from, to))
            // Keep the time, so bytecode compiled from this file stays valid.
            await utimes(path, before.atime, before.mtime)
          }
        })
        await updateRecords(venv, template)
      },
      catch: (cause) => `rewriting the copied venv failed: ${String(cause)}`
    })
    yield* giveTree(venv, input.owner, "venv").pipe(Effect.mapError((error) => error.message))
  })

/** A RECORD's rows: `path,sha256=<urlsafe b64>,size`, paths relative to the folder holding the dist-info. */
const recordRows = (text: string) =>
  text.split(/\r?\n/).filter((l) => l !== "").map((line) => {
    const [size = "", hash = ""] = line.split(",").reverse()
    return { path: line.slice(0, line.length - size.length - hash.length - 2), hash, size }
  })

const recordBase = (venv: string, record: string) => dirname(dirname(join(venv, record)))

/** The RECORD files under `venv` that give a hash for one of `rewrite`. */
const recordsListing = async (venv: string, rewrite: Template["rewrite"]): Promise<Array<string>> => {
  const named = new Set(rewrite.filter((r) => r.kind === "file").map((r) => join(venv, r.path)))
  const records = (await readdir(venv, { recursive: true })).filter((p) => p.endsWith(".dist-info/RECORD"))
  const listing: Array<string> = []
  for (const record of records) {
    const rows = recordRows(await readFile(join(venv, record), "utf8"))
    const base = recordBase(venv, record)
    if (rows.some((row) => row.hash !== "" && named.has(resolve(base, row.path)))) listing.push(record)
  }
  return listing.sort()
}

/** pip's RECORD hash: sha256, urlsafe base64 without padding. */
const recordHash = (data: Buffer) => `sha256=${createHash("sha256").update(data).digest("base64url")}`

/** Give the rewritten files their new hash and size in the RECORDs, as pip would have written them. */
const updateRecords = async (venv: string, template: Template) => {
  const rewritten = new Set(template.rewrite.filter((r) => r.kind === "file").map((r) => join(venv, r.path)))
  for (const record of template.records) {
    const path = join(venv, record)
    const text = await readFile(path, "utf8")
    const newline = text.includes("\r\n") ? "\r\n" : "\n"
    const base = recordBase(venv, record)
    const rows = await Promise.all(
      recordRows(text).map(async (row) => {
        const file = resolve(base, row.path)
        if (row.hash === "" || !rewritten.has(file)) return `${row.path},${row.hash},${row.size}`
        const data = await readFile(file)
        return `${row.path},${recordHash(data)},${data.length}`
      })
    )
    const before = await stat(path)
    await writeFile(path, rows.map((r) => r + newline).join(""))
    await utimes(path, before.atime, before.mtime)
  }
}

const inBatches = async <A>(items: ReadonlyArray<A>, size: number, f: (item: A) => Promise<void>) => {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(f))
}

const replaceAll = (data: Buffer, from: Buffer, to: Buffer): Buffer => {
  const parts: Array<Buffer> = []
  let at = 0
  for (let i = data.indexOf(from); i !== -1; i = data.indexOf(from, at)) {
    parts.push(data.subarray(at, i), to)
    at = i + from.length
  }
  parts.push(data.subarray(at))
  return Buffer.concat(parts)
}
