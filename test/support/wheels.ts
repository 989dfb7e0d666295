// Writes small, valid, pure-Python wheels (zip files with METADATA, WHEEL and RECORD),
// byte for byte the same for the same spec, so tests and examples need no package index
// and no build backend.
import { createHash } from "node:crypto"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { crc32, deflateRawSync } from "node:zlib"

export interface WheelSpec {
  readonly name: string
  readonly version: string
  /** archive path -> file content, e.g. `{ "greeting/__init__.py": "..." }` */
  readonly modules: Readonly<Record<string, string>>
  /** `Requires-Dist` lines, e.g. `["textcase>=1.0"]` */
  readonly requires?: ReadonlyArray<string>
  /** wheel tag triple; pure Python by default */
  readonly tag?: string
  readonly summary?: string
  /** Archive paths (of `modules`) stored as executable files (external_attr 0o100755). */
  readonly executable?: ReadonlyArray<string>
  /** Archive paths (of `modules`) left out of RECORD. */
  readonly unrecorded?: ReadonlyArray<string>
  /** `Root-Is-Purelib`; by default true exactly when the tag ends in `-none-any`. */
  readonly rootIsPurelib?: boolean
  /** A build tag for the file name, e.g. `1`. */
  readonly build?: string
}

/** Writes the wheel into `dir` and returns its path. */
export async function buildWheel(spec: WheelSpec & { readonly dir: string }): Promise<string> {
  await mkdir(spec.dir, { recursive: true })
  const path = join(spec.dir, wheelFilename(spec))
  await writeFile(path, wheelBytes(spec))
  return path
}

export function wheelFilename(spec: WheelSpec): string {
  const build = spec.build === undefined ? "" : `-${spec.build}`
  return `${distName(spec.name)}-${spec.version}${build}-${spec.tag ?? "py3-none-any"}.whl`
}

export function wheelBytes(spec: WheelSpec): Buffer {
  const distInfo = `${distName(spec.name)}-${spec.version}.dist-info`
  const metadata = [
    "Metadata-Version: 2.1",
    `Name: ${spec.name}`,
    `Version: ${spec.version}`,
    `Summary: ${spec.summary ?? `${spec.name} (test wheel)`}`,
    ...(spec.requires ?? []).map((r) => `Requires-Dist: ${r}`),
    ""
  ].join("\n")
  const pure = spec.rootIsPurelib ?? (spec.tag ?? "py3-none-any").endsWith("-none-any")
  const wheel = [
    "Wheel-Version: 1.0",
    "Generator: sacar-test-wheels",
    `Root-Is-Purelib: ${pure ? "true" : "false"}`,
    `Tag: ${spec.tag ?? "py3-none-any"}`,
    ""
  ].join("\n")
  const files: Array<[string, Buffer]> = [
    ...Object.keys(spec.modules)
      .sort()
      .map((p): [string, Buffer] => [p, Buffer.from(spec.modules[p] ?? "", "utf8")]),
    [`${distInfo}/METADATA`, Buffer.from(metadata, "utf8")],
    [`${distInfo}/WHEEL`, Buffer.from(wheel, "utf8")]
  ]
  const unrecorded = new Set(spec.unrecorded ?? [])
  const record =
    files.filter(([p]) => !unrecorded.has(p)).map(([p, data]) => `${p},sha256=${recordHash(data)},${data.length}`).join(
      "\n"
    ) +
    `\n${distInfo}/RECORD,,\n`
  files.push([`${distInfo}/RECORD`, Buffer.from(record, "utf8")])
  const executable = new Set(spec.executable ?? [])
  return zip(files.map(([p, data]) => [p, data, executable.has(p) ? 0o100755 : 0o100644]))
}

function distName(name: string): string {
  return name.replace(/[-_.]+/g, "_")
}

function recordHash(data: Buffer): string {
  return createHash("sha256").update(data).digest("base64url")
}

// 1980-01-01 00:00:00, the earliest DOS date, so wheels do not depend on the clock.
const DOS_TIME = 0
const DOS_DATE = (0 << 9) | (1 << 5) | 1

function zip(files: ReadonlyArray<readonly [string, Buffer, number]>): Buffer {
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const [name, data, mode] of files) {
    const nameBytes = Buffer.from(name, "utf8")
    const compressed = deflateRawSync(data, { level: 9 })
    const crc = crc32(data)
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4) // version needed
    local.writeUInt16LE(0x0800, 6) // UTF-8 names
    local.writeUInt16LE(8, 8) // deflate
    local.writeUInt16LE(DOS_TIME, 10)
    local.writeUInt16LE(DOS_DATE, 12)
    local.writeUInt32LE(crc, 14)
    local.writeUInt32LE(compressed.length, 18)
    local.writeUInt32LE(data.length, 22)
    local.writeUInt16LE(nameBytes.length, 26)
    local.writeUInt16LE(0, 28)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE((3 << 8) | 20, 4) // made by: unix
    central.writeUInt16LE(20, 6)
    central.writeUInt16LE(0x0800, 8)
    central.writeUInt16LE(8, 10)
    central.writeUInt16LE(DOS_TIME, 12)
    central.writeUInt16LE(DOS_DATE, 14)
    central.writeUInt32LE(crc, 16)
    central.writeUInt32LE(compressed.length, 20)
    central.writeUInt32LE(data.length, 24)
    central.writeUInt16LE(nameBytes.length, 28)
    central.writeUInt32LE((mode << 16) >>> 0, 38) // regular file, rw-r--r-- unless executable
    central.writeUInt32LE(offset, 42)
    locals.push(local, nameBytes, compressed)
    centrals.push(central, nameBytes)
    offset += local.length + nameBytes.length + compressed.length
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(files.length, 8)
  end.writeUInt16LE(files.length, 10)
  end.writeUInt32LE(centralSize, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, ...centrals, end])
}
