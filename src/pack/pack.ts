// `sacar pack`: turns a Python project into the release tarball the reconcilers install
// (docs/contract.md §4): wheels/*.whl, requirements.txt, bin/*, python-version, the app.
import { access, constants, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { basename, dirname, join, resolve } from "node:path"
import { BadSetting, ProjectInvalid } from "./errors.ts"
import { type Entry, mode, projectEntries } from "./files.ts"
import { chooseVersion, findPython } from "./python.ts"
import { writeTarball, type Written } from "./tarball.ts"
import { platformMismatch } from "./wheel-tags.ts"
import { buildWheels } from "./wheels.ts"

export interface PackOptions {
  readonly dir: string
  readonly out: string
  readonly findLinks: ReadonlyArray<string>
  readonly noIndex: boolean
  readonly pythonVersion: string | undefined
  readonly env: NodeJS.ProcessEnv
  /** progress and warnings, one line each */
  readonly log: (line: string) => void
}

export interface Packed extends Written {
  readonly wheels: ReadonlyArray<string>
  readonly pythonVersion: string
  readonly warnings: ReadonlyArray<string>
}

/** SOURCE_DATE_EPOCH when set (reproducible-builds.org), else the epoch. */
export function entryTime(env: NodeJS.ProcessEnv): Date {
  const raw = env.SOURCE_DATE_EPOCH
  if (raw === undefined || raw === "") return new Date(0)
  if (!/^\d+$/.test(raw)) {
    throw new BadSetting({
      name: "SOURCE_DATE_EPOCH",
      problem: `expected whole seconds since 1970, got ${JSON.stringify(raw)}`
    })
  }
  return new Date(Number(raw) * 1000)
}

export async function pack(o: PackOptions): Promise<Packed> {
  const dir = await projectDir(o.dir)
  const out = await outputPath(o.out)
  const mtime = entryTime(o.env)
  await requireFile(dir, "bin/deploy", "every release needs bin/deploy: the script each node runs to go live")
  await requireFile(
    dir,
    "requirements.txt",
    "nodes install with pip install -r requirements.txt; an empty file is fine for an app without dependencies"
  )
  const versionFile = await readOptional(join(dir, "python-version"))
  const version = chooseVersion(dir, o.pythonVersion, versionFile?.trim())
  const python = await findPython(version, o.env)
  o.log(`using ${python.command} (Python ${python.version})`)

  const ownWheels = join(dir, "wheels")
  const hasOwnWheels = await isDirectory(ownWheels)
  const work = await mkdtemp(join(tmpdir(), "sacar-pack-"))
  try {
    const wheelDir = join(work, "wheels")
    await mkdir(wheelDir)
    // a wheels/ directory in the project is a source of wheels, not part of the layout:
    // the resolved set replaces it, so stale or unused wheels do not ship
    const findLinks = [...(hasOwnWheels ? [ownWheels] : []), ...o.findLinks.map((d) => resolve(d))]
    o.log(`resolving requirements.txt into wheels${o.noIndex ? " (no index)" : ""}`)
    const wheels = await buildWheels(
      { python, projectDir: dir, outDir: wheelDir, findLinks, noIndex: o.noIndex },
      o.env
    )
    const warnings = wheels.flatMap((w) => platformMismatch(w, python.tags, python.version) ?? [])
    for (const w of warnings) o.log(`warning: ${w}`)

    const entries: Entry[] = await projectEntries(dir, new Set([out, ownWheels]), (l) => o.log(`warning: ${l}`))
    entries.push({ type: "dir", path: "wheels", mode: mode.dir })
    for (const w of wheels) {
      const source = join(wheelDir, w)
      entries.push({ type: "file", path: `wheels/${w}`, mode: mode.plain, source, size: (await stat(source)).size })
    }
    if (versionFile === undefined) {
      const source = join(work, "python-version")
      await writeFile(source, `${python.version}\n`, "utf8")
      entries.push({ type: "file", path: "python-version", mode: mode.plain, source, size: (await stat(source)).size })
    }
    o.log(`writing ${basename(out)} (${entries.length} entries, ${wheels.length} wheels)`)
    const written = await writeTarball(entries, out, mtime)
    return { ...written, wheels, pythonVersion: python.version, warnings }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

async function projectDir(dir: string): Promise<string> {
  const abs = resolve(dir)
  if (!(await isDirectory(abs))) throw new ProjectInvalid({ dir: abs, problem: "not a directory" })
  return realpath(abs)
}

/** Real path of the output, so it is recognised (and skipped) when it lies inside the project. */
async function outputPath(out: string): Promise<string> {
  const abs = resolve(out)
  if (!(await isDirectory(dirname(abs)))) {
    throw new BadSetting({ name: "-o", problem: `cannot write ${out}: ${dirname(abs)} is not a directory` })
  }
  return join(await realpath(dirname(abs)), basename(abs))
}

async function requireFile(dir: string, path: string, why: string): Promise<void> {
  try {
    await access(join(dir, path), constants.R_OK)
  } catch {
    throw new ProjectInvalid({ dir, problem: `no ${path}: ${why}` })
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}
