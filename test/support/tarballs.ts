/**
 * Release tarballs for tests: well-formed ones in the contract's layout (wheels built by
 * ./wheels.ts), and archives of exactly the entries a test lists (`rawTarball`,
 * `writeTarball`), written header by header, since node-tar will not create entries
 * that climb out, devices or setuid files. The only tar writer the tests have.
 */
import { createHash, randomBytes } from "node:crypto"
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { gzipSync } from "node:zlib"
import { create } from "tar"
import { buildWheel } from "./wheels.ts"
import type { WheelSpec } from "./wheels.ts"

export interface ReleaseSpec {
  /** Wheels put in `wheels/`; their names go into requirements.txt unless `requirements` is given. */
  readonly wheels?: ReadonlyArray<WheelSpec>
  /** `null` leaves requirements.txt out. */
  readonly requirements?: ReadonlyArray<string> | null
  /** The body of `bin/prepare` (made executable), or omitted for none. */
  readonly prepare?: string
  readonly pythonVersion?: string
  /** More files: path -> content, or content and mode. */
  readonly files?: Readonly<Record<string, string | { readonly content: string; readonly mode: number }>>
}

export interface Tarball {
  readonly path: string
  readonly sha256: string
}

const sha256Of = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex")

/** A release in the contract's layout, as `./`-prefixed entries like `tar czf x.tgz -C dir .` makes. */
export const buildReleaseTarball = async (out: string, spec: ReleaseSpec): Promise<Tarball> => {
  const stage = await mkdtemp(join(tmpdir(), "sacar-stage-"))
  try {
    const wheels = spec.wheels ?? []
    await mkdir(join(stage, "wheels"), { recursive: true })
    for (const wheel of wheels) await buildWheel({ ...wheel, dir: join(stage, "wheels") })
    const requirements = spec.requirements === undefined
      ? wheels.map((w) => `${w.name}==${w.version}`)
      : spec.requirements
    if (requirements !== null) await writeFile(join(stage, "requirements.txt"), requirements.join("\n") + "\n")
    if (spec.prepare !== undefined) {
      await mkdir(join(stage, "bin"), { recursive: true })
      await writeFile(join(stage, "bin", "prepare"), spec.prepare, { mode: 0o755 })
    }
    if (spec.pythonVersion !== undefined) await writeFile(join(stage, "python-version"), spec.pythonVersion + "\n")
    for (const [path, file] of Object.entries(spec.files ?? {})) {
      await mkdir(dirname(join(stage, path)), { recursive: true })
      const { content, mode } = typeof file === "string" ? { content: file, mode: 0o644 } : file
      await writeFile(join(stage, path), content)
      await chmod(join(stage, path), mode)
    }
    await mkdir(dirname(out), { recursive: true })
    await create({ gzip: true, file: out, cwd: stage, portable: true }, ["."])
    return { path: out, sha256: await sha256Of(out) }
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

/** `count` small pure-Python packages `pkg0`... each exposing `VALUE`. */
export const smallWheels = (count: number, prefix = "pkg"): Array<WheelSpec> =>
  Array.from({ length: count }, (_, i) => ({
    name: `${prefix}${i}`,
    version: "1.0.0",
    modules: {
      [`${prefix}${i}/__init__.py`]: `VALUE = ${i}\n`,
      [`${prefix}${i}/util.py`]: `def double(x):\n    return 2 * x\n`
    }
  }))

// ---- the one ustar writer: exact entries, including those node-tar refuses to create ----

export interface TarEntry {
  readonly name: string
  readonly type?: "file" | "dir" | "symlink" | "hardlink" | "chardev" | "blockdev" | "fifo"
  /** A file's bytes; other types have none. */
  readonly content?: string | Buffer
  readonly mode?: number
  /** A link's target. */
  readonly linkname?: string
}

const TYPE_FLAG: Record<NonNullable<TarEntry["type"]>, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  dir: "5",
  fifo: "6"
}

const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0"

const header = (entry: TarEntry, size: number): Buffer => {
  const block = Buffer.alloc(512)
  const put = (text: string, offset: number, width: number) => {
    const bytes = Buffer.from(text, "utf8")
    if (bytes.length > width) throw new Error(`${text} does not fit in ${width} bytes`)
    bytes.copy(block, offset)
  }
  const type = entry.type ?? "file"
  put(entry.name, 0, 100)
  put(octal(entry.mode ?? (type === "dir" ? 0o755 : 0o644), 8), 100, 8)
  put(octal(0, 8), 108, 8)
  put(octal(0, 8), 116, 8)
  put(octal(size, 12), 124, 12)
  put(octal(1_700_000_000, 12), 136, 12)
  put("        ", 148, 8)
  put(TYPE_FLAG[type], 156, 1)
  put(entry.linkname ?? "", 157, 100)
  put("ustar\0", 257, 6)
  put("00", 263, 2)
  put(octal(0, 8), 329, 8)
  put(octal(0, 8), 337, 8)
  let sum = 0
  for (const byte of block) sum += byte
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8)
  return block
}

/** A gzip-compressed tar of exactly these entries, in this order. */
export const rawTarball = (entries: ReadonlyArray<TarEntry>): Buffer => {
  const blocks: Array<Buffer> = []
  for (const entry of entries) {
    const data = (entry.type ?? "file") === "file" ? Buffer.from(entry.content ?? "") : Buffer.alloc(0)
    blocks.push(header(entry, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return gzipSync(Buffer.concat(blocks))
}

export interface Artifact extends Tarball {
  /** Its file:// URL, as a DeploySpec's artifact names it. */
  readonly url: string
}

/** Writes `dir/name`: these entries through `rawTarball`, or bytes as they are (a corrupt archive). */
export const writeTarball = async (
  dir: string,
  name: string,
  entries: ReadonlyArray<TarEntry> | Buffer
): Promise<Artifact> => {
  const bytes = Buffer.isBuffer(entries) ? entries : rawTarball(entries)
  const path = join(dir, name)
  await writeFile(path, bytes)
  return { path, url: `file://${path}`, sha256: createHash("sha256").update(bytes).digest("hex") }
}

export interface HostileCase {
  readonly name: string
  readonly bytes: Buffer
  /** The entry the error must name; undefined for archives broken as a whole. */
  readonly entry: string | undefined
  readonly problem: RegExp
}

const innocent: TarEntry = { name: "./requirements.txt", content: "\n" }

/** One archive per thing a release may not contain. */
export const hostileTarballs = (): ReadonlyArray<HostileCase> => {
  // A real archive whose compressed middle is overwritten: the gzip header is fine, the data is not.
  const corrupt = rawTarball([innocent, { name: "./data", content: randomBytes(8192).toString("hex") }])
  corrupt.fill(0x5a, 100, 400)
  return [
    {
      name: "traversal",
      entry: "../x",
      problem: /\.\./,
      bytes: rawTarball([innocent, { name: "../x", content: "escaped" }])
    },
    {
      name: "nested traversal",
      entry: "./app/../../y",
      problem: /\.\./,
      bytes: rawTarball([innocent, { name: "./app/../../y", content: "escaped" }])
    },
    {
      name: "absolute path",
      entry: "/etc/sacar-test-evil",
      problem: /absolute/,
      bytes: rawTarball([innocent, { name: "/etc/sacar-test-evil", content: "escaped" }])
    },
    {
      name: "symlink out",
      entry: "./up",
      problem: /outside the release/,
      bytes: rawTarball([innocent, { name: "./up", type: "symlink", linkname: "../../.." }])
    },
    {
      name: "absolute symlink",
      entry: "./etc",
      problem: /outside the release/,
      bytes: rawTarball([innocent, { name: "./etc", type: "symlink", linkname: "/etc" }])
    },
    {
      name: "write through symlink",
      entry: "./inner/file",
      problem: /beneath the symbolic link/,
      bytes: rawTarball([innocent, { name: "./data", type: "dir" }, {
        name: "./inner",
        type: "symlink",
        linkname: "data"
      }, { name: "./inner/file", content: "x" }])
    },
    {
      // Each link alone stays inside textually; through the first, the second reaches "/".
      name: "symlink chain out",
      entry: "./t",
      problem: /outside the release/,
      bytes: rawTarball([
        innocent,
        { name: "./a/b/c/d/e/f/g/", type: "dir" },
        { name: "./a/b/c/d/e/f/g/s", type: "symlink", linkname: "../../../../../../.." },
        { name: "./t", type: "symlink", linkname: "a/b/c/d/e/f/g/s/../../../../../../../.." }
      ])
    },
    {
      // The first link is harmless when written; a later link beneath its path makes it escape.
      name: "symlink made to escape by a later link",
      entry: "./x",
      problem: /outside the release/,
      bytes: rawTarball([
        innocent,
        { name: "./x", type: "symlink", linkname: "a/b/c/s/../../.." },
        { name: "./a/b/c/", type: "dir" },
        { name: "./a/b/c/s", type: "symlink", linkname: "../.." }
      ])
    },
    {
      name: "hard link",
      entry: "./passwd",
      problem: /hard link/,
      bytes: rawTarball([innocent, { name: "./passwd", type: "hardlink", linkname: "/etc/passwd" }])
    },
    {
      name: "character device",
      entry: "./null",
      problem: /character device/,
      bytes: rawTarball([innocent, { name: "./null", type: "chardev" }])
    },
    {
      name: "block device",
      entry: "./disk",
      problem: /block device/,
      bytes: rawTarball([innocent, { name: "./disk", type: "blockdev" }])
    },
    { name: "fifo", entry: "./pipe", problem: /fifo/, bytes: rawTarball([innocent, { name: "./pipe", type: "fifo" }]) },
    {
      name: "setuid",
      entry: "./bin/su",
      problem: /setuid/,
      bytes: rawTarball([innocent, { name: "./bin/su", mode: 0o4755, content: "#!/bin/sh\n" }])
    },
    {
      name: "setgid",
      entry: "./bin/sg",
      problem: /setgid/,
      bytes: rawTarball([innocent, { name: "./bin/sg", mode: 0o2755, content: "#!/bin/sh\n" }])
    },
    {
      name: "reserved marker",
      entry: "./.sacar/ready",
      problem: /reserved/,
      bytes: rawTarball([innocent, { name: "./.sacar/ready", content: "{}" }])
    },
    { name: "corrupt gzip", entry: undefined, problem: /not a valid gzip-compressed tar/, bytes: corrupt },
    {
      name: "not gzip at all",
      entry: undefined,
      problem: /not a valid|could not be unpacked/,
      bytes: Buffer.from("this is not an archive, just text ".repeat(40))
    }
  ]
}
