/**
 * Release tarballs for tests: well-formed ones in the contract's layout (wheels built by
 * ./wheels.ts), and hostile ones written header by header, since node-tar will not
 * create entries that climb out, devices or setuid files.
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

// ---- raw ustar writing, for entries node-tar refuses to create ----

export type RawType = "file" | "hardlink" | "symlink" | "chardev" | "blockdev" | "directory" | "fifo"

export interface RawEntry {
  readonly path: string
  readonly type?: RawType
  readonly mode?: number
  readonly content?: string
  readonly linkpath?: string
}

const TYPE_FLAG: Record<RawType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  directory: "5",
  fifo: "6"
}

const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0"

const header = (entry: RawEntry, size: number): Buffer => {
  const block = Buffer.alloc(512)
  const put = (text: string, offset: number, width: number) => {
    const bytes = Buffer.from(text, "utf8")
    if (bytes.length > width) throw new Error(`${text} does not fit in ${width} bytes`)
    bytes.copy(block, offset)
  }
  const type = entry.type ?? "file"
  put(entry.path, 0, 100)
  put(octal(entry.mode ?? (type === "directory" ? 0o755 : 0o644), 8), 100, 8)
  put(octal(0, 8), 108, 8)
  put(octal(0, 8), 116, 8)
  put(octal(size, 12), 124, 12)
  put(octal(1_700_000_000, 12), 136, 12)
  put("        ", 148, 8)
  put(TYPE_FLAG[type], 156, 1)
  put(entry.linkpath ?? "", 157, 100)
  put("ustar\0", 257, 6)
  put("00", 263, 2)
  put(octal(0, 8), 329, 8)
  put(octal(0, 8), 337, 8)
  let sum = 0
  for (const byte of block) sum += byte
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8)
  return block
}

/** A gzip-compressed tar of exactly these entries. */
export const rawTarball = (entries: ReadonlyArray<RawEntry>): Buffer => {
  const blocks: Array<Buffer> = []
  for (const entry of entries) {
    const data = Buffer.from(entry.type === undefined || entry.type === "file" ? entry.content ?? "" : "", "utf8")
    blocks.push(header(entry, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return gzipSync(Buffer.concat(blocks))
}

export interface HostileCase {
  readonly name: string
  readonly bytes: Buffer
  /** The entry the error must name; undefined for archives broken as a whole. */
  readonly entry: string | undefined
  readonly problem: RegExp
}

const innocent: RawEntry = { path: "./requirements.txt", content: "\n" }

/** One archive per thing a release may not contain. */
export const hostileTarballs = (): ReadonlyArray<HostileCase> => {
  // A real archive whose compressed middle is overwritten: the gzip header is fine, the data is not.
  const corrupt = rawTarball([innocent, { path: "./data", content: randomBytes(8192).toString("hex") }])
  corrupt.fill(0x5a, 100, 400)
  return [
    {
      name: "traversal",
      entry: "../x",
      problem: /\.\./,
      bytes: rawTarball([innocent, { path: "../x", content: "escaped" }])
    },
    {
      name: "nested traversal",
      entry: "./app/../../y",
      problem: /\.\./,
      bytes: rawTarball([innocent, { path: "./app/../../y", content: "escaped" }])
    },
    {
      name: "absolute path",
      entry: "/etc/sacar-test-evil",
      problem: /absolute/,
      bytes: rawTarball([innocent, { path: "/etc/sacar-test-evil", content: "escaped" }])
    },
    {
      name: "symlink out",
      entry: "./up",
      problem: /outside the release/,
      bytes: rawTarball([innocent, { path: "./up", type: "symlink", linkpath: "../../.." }])
    },
    {
      name: "absolute symlink",
      entry: "./etc",
      problem: /outside the release/,
      bytes: rawTarball([innocent, { path: "./etc", type: "symlink", linkpath: "/etc" }])
    },
    {
      name: "write through symlink",
      entry: "./inner/file",
      problem: /beneath the symbolic link/,
      bytes: rawTarball([innocent, { path: "./data", type: "directory" }, {
        path: "./inner",
        type: "symlink",
        linkpath: "data"
      }, { path: "./inner/file", content: "x" }])
    },
    {
      // Each link alone stays inside textually; through the first, the second reaches "/".
      name: "symlink chain out",
      entry: "./t",
      problem: /outside the release/,
      bytes: rawTarball([
        innocent,
        { path: "./a/b/c/d/e/f/g/", type: "directory" },
        { path: "./a/b/c/d/e/f/g/s", type: "symlink", linkpath: "../../../../../../.." },
        { path: "./t", type: "symlink", linkpath: "a/b/c/d/e/f/g/s/../../../../../../../.." }
      ])
    },
    {
      // The first link is harmless when written; a later link beneath its path makes it escape.
      name: "symlink made to escape by a later link",
      entry: "./x",
      problem: /outside the release/,
      bytes: rawTarball([
        innocent,
        { path: "./x", type: "symlink", linkpath: "a/b/c/s/../../.." },
        { path: "./a/b/c/", type: "directory" },
        { path: "./a/b/c/s", type: "symlink", linkpath: "../.." }
      ])
    },
    {
      name: "hard link",
      entry: "./passwd",
      problem: /hard link/,
      bytes: rawTarball([innocent, { path: "./passwd", type: "hardlink", linkpath: "/etc/passwd" }])
    },
    {
      name: "character device",
      entry: "./null",
      problem: /character device/,
      bytes: rawTarball([innocent, { path: "./null", type: "chardev" }])
    },
    {
      name: "block device",
      entry: "./disk",
      problem: /block device/,
      bytes: rawTarball([innocent, { path: "./disk", type: "blockdev" }])
    },
    { name: "fifo", entry: "./pipe", problem: /fifo/, bytes: rawTarball([innocent, { path: "./pipe", type: "fifo" }]) },
    {
      name: "setuid",
      entry: "./bin/su",
      problem: /setuid/,
      bytes: rawTarball([innocent, { path: "./bin/su", mode: 0o4755, content: "#!/bin/sh\n" }])
    },
    {
      name: "setgid",
      entry: "./bin/sg",
      problem: /setgid/,
      bytes: rawTarball([innocent, { path: "./bin/sg", mode: 0o2755, content: "#!/bin/sh\n" }])
    },
    {
      name: "reserved marker",
      entry: "./.sacar/ready",
      problem: /reserved/,
      bytes: rawTarball([innocent, { path: "./.sacar/ready", content: "{}" }])
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
