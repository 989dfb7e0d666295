// What goes into the dist tarball, under one top folder `sacar-<version>-linux-x64/`:
// Sacar's tracked source (bin/, src/, package.json, package-lock.json, README.md), the
// `.ts` files of bin/ and src/ as plain JavaScript (javascript.ts),
// the production packages of package-lock.json copied from node_modules (the `node`
// package among them: the Node 24 runtime), `node_modules/.bin/node`, and the `sacar`
// entry script. Modes are normalised (755 for executables and folders, 644 otherwise)
// so the bytes do not depend on the checkout's umask.
import { spawnSync } from "node:child_process"
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises"
import { dirname, join, posix } from "node:path"
import { type Entry, mode } from "../pack/files.ts"
import { DistError } from "./errors.ts"
import { javaScriptPath, toJavaScript } from "./javascript.ts"

/** The source Sacar runs from; tests, docs and benchmarks stay behind. */
const SOURCE = ["bin", "src", "package.json", "package-lock.json", "README.md"]

interface LockPackage {
  readonly dev?: boolean
  readonly devOptional?: boolean
  readonly link?: boolean
}

/** `node_modules/...` folders of the packages installed without --omit=dev only. */
export const productionPackages = (lock: { readonly packages?: Record<string, LockPackage> }): string[] =>
  Object.entries(lock.packages ?? {})
    .filter(([path, p]) => path.startsWith("node_modules/") && p.dev !== true && p.devOptional !== true)
    .map(([path]) => path)
    .sort()

const trackedSource = (root: string): string[] => {
  const git = spawnSync("git", ["ls-files", "-z", "--", ...SOURCE], { cwd: root, encoding: "utf8" })
  if (git.status !== 0) {
    throw new DistError({
      problem: `cannot list Sacar's tracked files with git in ${root}: ${git.stderr.trim() || git.error?.message}`
    })
  }
  return git.stdout.split("\0").filter((p) => p !== "").sort()
}

const fileEntry = async (source: string, path: string): Promise<Entry> => {
  const st = await lstat(source)
  if (st.isSymbolicLink()) return { type: "symlink", path, mode: mode.symlink, target: await readlink(source) }
  if (!st.isFile()) throw new DistError({ problem: `${source} is neither a file nor a link` })
  return { type: "file", path, source, size: st.size, mode: st.mode & 0o111 ? mode.executable : mode.plain }
}

/** Sacar's own TypeScript, which the dist ships as JavaScript. */
const isShippedTypeScript = (path: string) => /^(bin|src)\/.*\.ts$/.test(path)

export interface JavaScriptFile {
  /** Inside the checkout, `.js` for a stripped `.ts`. */
  readonly path: string
  /** Where the stripped text was written. */
  readonly file: string
  readonly size: number
  readonly executable: boolean
}

/**
 * Writes every tracked `.ts` file of bin/ and src/ as JavaScript under `into` (same
 * relative paths, `.js` names): what the dist runs, and what bench/memory.ts starts.
 */
export const writeJavaScriptSource = async (root: string, into: string): Promise<JavaScriptFile[]> => {
  const out: JavaScriptFile[] = []
  for (const path of trackedSource(root).filter(isShippedTypeScript)) {
    const source = join(root, path)
    const text = toJavaScript(await readFile(source, "utf8"), path)
    const file = join(into, javaScriptPath(path))
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, text)
    const st = await lstat(source)
    out.push({ path: javaScriptPath(path), file, size: Buffer.byteLength(text), executable: (st.mode & 0o111) !== 0 })
  }
  return out
}

/**
 * Files of an installed package that Node never loads: type declarations, source maps
 * (read only under --enable-source-maps, which the entry script does not pass) and
 * TypeScript sources (Node refuses to strip types under node_modules). A third of the
 * packages' bytes (effect ships its whole src/ and a .d.ts and two maps per module):
 * left out, the tarball is smaller for every node that downloads it, and quicker to build.
 */
const isNeverLoaded = (name: string): boolean => /\.(?:[cm]?ts|map)$/.test(name)

/** Everything under `dir` as entries below `path`, leaving out `skip` (a nested node_modules) and what Node never loads. */
const tree = async (dir: string, path: string, skip: (name: string) => boolean): Promise<Entry[]> => {
  const out: Entry[] = [{ type: "dir", path, mode: mode.dir }]
  for (const name of (await readdir(dir)).sort()) {
    if (skip(name)) continue
    const source = join(dir, name)
    const st = await lstat(source)
    if (st.isDirectory()) {
      const inside = await tree(source, posix.join(path, name), () => false)
      // A folder of sources only (effect's src/) would arrive empty.
      if (inside.some((e) => e.type !== "dir")) out.push(...inside)
    } else if (!isNeverLoaded(name)) out.push(await fileEntry(source, posix.join(path, name)))
  }
  return out
}

/** Folders that contain the given entries' paths, so extraction needs no implicit ones. */
const parentDirs = (entries: ReadonlyArray<Entry>): Entry[] => {
  const dirs = new Set<string>()
  for (const e of entries) {
    for (let p = posix.dirname(e.path); p !== "." && p !== "/"; p = posix.dirname(p)) dirs.add(p)
  }
  const have = new Set(entries.filter((e) => e.type === "dir").map((e) => e.path))
  return [...dirs].filter((d) => !have.has(d)).map((d) => ({ type: "dir", path: d, mode: mode.dir }))
}

/** The tarball's top folder; the Nomad jobs run `<top>/sacar` from where they unpack it. */
export const distTop = (version: string): string => `sacar-${version}-linux-x64`

/**
 * Node options a reconciler starts with. It runs on every machine of the fleet and
 * allocates little: V8's default young generation (16 MiB semi-spaces) grows to about
 * 40 MiB of RSS while the modules load, and only a start-up flag keeps it small
 * (`v8.setFlagsFromString` later caps growth but does not give back what grew).
 */
export const RECONCILER_NODE_OPTIONS = ["--max-semi-space-size=1"]

export const entryScript = (version: string): string =>
  `#!/bin/sh
# Sacar ${version} for linux-x64, with its own Node runtime and dependencies in this folder.
here=$(dirname "$(readlink -f "$0")")
# The compiled code of every module, kept between runs: a restart skips parsing and
# compiling them again. The source is plain JavaScript (types stripped when the
# tarball was built), so Node's TypeScript stripper is never loaded.
export NODE_COMPILE_CACHE="\${NODE_COMPILE_CACHE:-\${TMPDIR:-/tmp}/node-compile-cache}"
flags=""
[ "$1" = reconciler ] && flags="${RECONCILER_NODE_OPTIONS.join(" ")}"
exec "$here/node_modules/node/bin/node" $flags "$here/bin/sacar.js" "$@"
`

export interface DistInputs {
  /** The repository checkout (package.json, node_modules). */
  readonly root: string
  /** The top folder inside the tarball. */
  readonly top: string
  /** The entry script, already written to a file. */
  readonly script: string
  /** A scratch folder for the stripped JavaScript the tarball takes its source from. */
  readonly work: string
}

export const distEntries = async (inputs: DistInputs): Promise<Entry[]> => {
  const { root, top } = inputs
  const entries: Entry[] = [{ type: "dir", path: top, mode: mode.dir }]
  for (const path of trackedSource(root).filter((p) => !isShippedTypeScript(p))) {
    entries.push(await fileEntry(join(root, path), posix.join(top, path)))
  }
  for (const js of await writeJavaScriptSource(root, inputs.work)) {
    entries.push({
      type: "file",
      path: posix.join(top, js.path),
      source: js.file,
      size: js.size,
      mode: js.executable ? mode.executable : mode.plain
    })
  }
  const lock = JSON.parse(await readFile(join(root, "package-lock.json"), "utf8")) as {
    packages?: Record<string, LockPackage>
  }
  for (const pkg of productionPackages(lock)) {
    const source = join(root, pkg)
    const present = await lstat(source).then((s) => s.isDirectory(), () => false)
    if (!present) {
      throw new DistError({ problem: `${pkg} is in package-lock.json but not installed: run \`npm ci\` first` })
    }
    // A package's own node_modules holds its nested packages, listed in the lock on their own;
    // the `node` package's holds the platform binary's installer output, left out (bin/node is the runtime).
    entries.push(...(await tree(source, posix.join(top, pkg), (name) => name === "node_modules")))
  }
  entries.push({
    type: "symlink",
    path: posix.join(top, "node_modules/.bin/node"),
    mode: mode.symlink,
    target: "../node/bin/node"
  })
  const script = await lstat(inputs.script)
  entries.push({
    type: "file",
    path: posix.join(top, "sacar"),
    source: inputs.script,
    size: script.size,
    mode: mode.executable
  })
  return [...entries, ...parentDirs(entries)]
}
