// Writes a gzip-compressed tar whose bytes depend only on the entries' paths, contents,
// types and (already normalised) modes: sorted entries, one fixed mtime, owner 0:0 with
// empty names, and a gzip header without time, name or host OS.
import { createHash } from "node:crypto"
import { createReadStream, createWriteStream } from "node:fs"
import { open, rename, rm } from "node:fs/promises"
import { pipeline } from "node:stream/promises"
import { createGzip } from "node:zlib"
import { Header, Pax } from "tar"
import type { Entry } from "./files.ts"

const BLOCK = 512
/** gzip's OS field (RFC 1952); zlib writes the build platform's, which differs between machines. */
const GZIP_OS_OFFSET = 9
const GZIP_OS_UNIX = 3

export interface Written {
  readonly path: string
  readonly sha256: string
  readonly size: number
}

/** Compares paths as UTF-8 bytes, so the order does not depend on the locale. */
export function byPath(a: Entry, b: Entry): number {
  return Buffer.compare(Buffer.from(a.path, "utf8"), Buffer.from(b.path, "utf8"))
}

/** `level`: gzip's; 9 by default. The dist tarball uses 6: its Node binary packs 3x faster for 0.6% more bytes. */
export async function writeTarball(
  entries: ReadonlyArray<Entry>,
  out: string,
  mtime: Date,
  level = 9
): Promise<Written> {
  const sorted = [...entries].sort(byPath)
  const partial = `${out}.partial-${process.pid}`
  try {
    await pipeline(tarStream(sorted, mtime), createGzip({ level }), createWriteStream(partial))
    const fh = await open(partial, "r+")
    try {
      await fh.write(Buffer.from([GZIP_OS_UNIX]), 0, 1, GZIP_OS_OFFSET)
    } finally {
      await fh.close()
    }
    const { sha256, size } = await digest(partial)
    await rename(partial, out)
    return { path: out, sha256, size }
  } catch (e) {
    await rm(partial, { force: true })
    throw e
  }
}

async function* tarStream(entries: ReadonlyArray<Entry>, mtime: Date): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    const data = {
      path: entry.type === "dir" ? `${entry.path}/` : entry.path,
      mode: entry.mode,
      uid: 0,
      gid: 0,
      uname: "",
      gname: "",
      mtime,
      size: entry.type === "file" ? entry.size : 0,
      type: entry.type === "dir" ? "Directory" : entry.type === "file" ? "File" : "SymbolicLink",
      linkpath: entry.type === "symlink" ? entry.target : ""
    } as const
    const header = new Header(data)
    // encode() says whether the ustar fields were too small (long paths): then a pax
    // record carries the full values first, as tar(1) and node-tar expect.
    if (header.encode()) yield new Pax(data).encode()
    if (header.block === undefined) throw new Error(`tar header for ${entry.path} was not encoded`)
    yield header.block
    if (entry.type === "file") {
      let written = 0
      for await (const chunk of createReadStream(entry.source)) {
        const buf = chunk as Buffer
        written += buf.length
        if (written > entry.size) break
        yield buf
      }
      if (written !== entry.size) {
        throw new Error(`${entry.path} changed size while it was being packed (${entry.size} -> ${written} bytes)`)
      }
      const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK
      if (pad > 0) yield Buffer.alloc(pad)
    }
  }
  yield Buffer.alloc(BLOCK * 2)
}

async function digest(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256")
  let size = 0
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { sha256: hash.digest("hex"), size }
}
