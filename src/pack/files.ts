// Decides which of the project's files go into the tarball, with normalised modes.
import { lstat, readdir, readlink } from "node:fs/promises"
import { isAbsolute, join, posix, relative, resolve, sep } from "node:path"
import { ProjectInvalid } from "./errors.ts"

export type Entry =
  | { readonly type: "dir"; readonly path: string; readonly mode: number }
  | {
    readonly type: "file"
    readonly path: string
    readonly mode: number
    readonly source: string
    readonly size: number
  }
  | { readonly type: "symlink"; readonly path: string; readonly mode: number; readonly target: string }

/** Never packed: version control, local virtualenvs and bytecode. */
const SKIPPED_NAMES = new Set([".git", ".hg", ".svn", ".venv", "__pycache__"])
/** The contract's scripts must be executable on the nodes whatever the checkout did to them. */
const SCRIPTS = new Set(["bin/prepare", "bin/deploy", "bin/pre-deploy"])

export const mode = {
  dir: 0o755,
  executable: 0o755,
  plain: 0o644,
  symlink: 0o777
} as const

/**
 * Walks `root`, leaving out `exclude` (absolute paths: the output file, the project's
 * own wheels/ directory, which the built wheel set replaces) and anything unreadable
 * as a plain file, directory or link inside the project.
 */
export async function projectEntries(
  root: string,
  exclude: ReadonlySet<string>,
  warn: (line: string) => void
): Promise<Entry[]> {
  const entries: Entry[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const abs = join(dir, name)
      if (SKIPPED_NAMES.has(name) || name.endsWith(".pyc") || exclude.has(abs)) continue
      const path = relative(root, abs).split("\\").join(posix.sep)
      const st = await lstat(abs)
      if (st.isDirectory()) {
        entries.push({ type: "dir", path, mode: mode.dir })
        await walk(abs)
      } else if (st.isFile()) {
        const executable = SCRIPTS.has(path) || (st.mode & 0o111) !== 0
        entries.push({
          type: "file",
          path,
          mode: executable ? mode.executable : mode.plain,
          source: abs,
          size: st.size
        })
      } else if (st.isSymbolicLink()) {
        const target = await readlink(abs)
        const landing = resolve(dir, target)
        const fromRoot = relative(root, landing)
        if (isAbsolute(target) || fromRoot === ".." || fromRoot.startsWith(`..${sep}`) || isAbsolute(fromRoot)) {
          // the reconciler refuses such links, so refuse them here, where they are easy to fix
          throw new ProjectInvalid({
            dir: root,
            problem: `${path} links to ${target}, outside the project; nodes refuse such links`
          })
        }
        entries.push({ type: "symlink", path, mode: mode.symlink, target })
      } else {
        warn(`skipping ${path}: not a file, directory or link`)
      }
    }
  }
  await walk(root)
  return entries
}
