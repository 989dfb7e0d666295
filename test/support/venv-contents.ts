/**
 * What a venv holds, in a form two venvs at paths of one length can be compared by:
 * test/python/compile.test.ts and test/python/wheel-installer.test.ts.
 */
import { lstat, readdir, readFile, readlink } from "node:fs/promises"
import { join, relative } from "node:path"
import { checkedRecord } from "../reconciler/steps/harness.ts"

/** Every file under `venv`: its bytes with the venv's path as `<venv>`; bytecode without the source's time and size. */
export const contents = async (venv: string): Promise<Map<string, string>> => {
  const files = new Map<string, string>()
  for (const entry of await readdir(venv, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    const data = await readFile(path)
    const body = path.endsWith(".pyc")
      ? Buffer.concat([data.subarray(0, 8), data.subarray(16)]).toString("latin1")
      : entry.name === "RECORD"
      ? await checkedRecord(path, data.toString("utf8"))
      : data.toString("latin1")
    files.set(relative(venv, path), body.replaceAll(venv, "<venv>"))
  }
  return files
}

/** Every path under `venv` (the venv itself as `.`): its type and permission bits, and a link's target. */
export const modes = async (venv: string): Promise<Map<string, string>> => {
  const found = new Map<string, string>()
  for (const name of [".", ...await readdir(venv, { recursive: true })]) {
    const path = join(venv, name)
    const st = await lstat(path)
    const kind = st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other"
    const target = st.isSymbolicLink() ? ` -> ${(await readlink(path)).replaceAll(venv, "<venv>")}` : ""
    found.set(relative(venv, path) || ".", `${kind} ${(st.mode & 0o7777).toString(8)}${target}`)
  }
  return found
}
