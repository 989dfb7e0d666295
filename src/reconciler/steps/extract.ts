/**
 * Step 2: the release moved into place. The download step has already unpacked the
 * artifact into a staging directory beside the release as its bytes arrived
 * (steps/unpack.ts), judging every entry by the rules below; this step waits for the
 * last files to be written, judges the archive's links once more as a whole, records
 * the artifact's source and renames the staging directory to `releases/<sha>`, so
 * `releases/<sha>` existing means it is whole. The first refused entry fails the
 * whole extraction, and nothing of it is kept.
 */
import * as Effect from "effect/Effect"
import { mkdir, rename, stat } from "node:fs/promises"
import { join } from "node:path"
import type { ReadEntry } from "tar"
import { ArchiveRejected, localFailure } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { RESERVED_TOP_LEVEL } from "./layout.ts"
import { writeMarker } from "./markers.ts"
import type { ReleaseSink } from "./release-sink.ts"

export interface ExtractLimits {
  /** Sum of the entries' sizes. */
  readonly maxBytes: number
  readonly maxEntries: number
}

export const defaultExtractLimits: ExtractLimits = { maxBytes: 2 * 1024 ** 3, maxEntries: 100_000 }

export interface ExtractInput {
  /** What the download step unpacked. */
  readonly unpacked: ReleaseSink
  /** `releases/<sha>`; must not exist yet unless another run completed it. */
  readonly dest: string
  /** Recorded as the `source` marker, inside the release before it appears. */
  readonly source: unknown
}

export interface ExtractResult {
  readonly skipped: boolean
  readonly entries: number
  readonly bytes: number
}

const ALLOWED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink"])
const TYPE_NAMES: Record<string, string> = {
  Link: "a hard link",
  CharacterDevice: "a character device",
  BlockDevice: "a block device",
  FIFO: "a fifo"
}

/** The entry's path relative to the release root, or why it may not be written. */
const normalise = (raw: string): { path: string } | { problem: string } => {
  if (raw.startsWith("/") || /^[a-zA-Z]:/.test(raw) || raw.startsWith("\\")) return { problem: "is an absolute path" }
  const segments = raw.split("/").filter((s) => s !== "" && s !== ".")
  if (segments.includes("..")) return { problem: "climbs out with '..'" }
  return { path: segments.join("/") }
}

// As the kernel: a path through more links than this is refused (ELOOP).
const MAX_LINK_HOPS = 40

/**
 * Where the relative link `target`, written at `dir`, leads once every link of the
 * archive on its way is followed as the kernel would (a link is replaced by its
 * target before a following ".." applies): the path inside the release, or why not.
 */
export const resolveLink = (
  dir: ReadonlyArray<string>,
  target: string,
  links: ReadonlyMap<string, string>
): { path: string } | { problem: "outside" | "loop" } => {
  const stack = [...dir]
  const queue = target.split("/")
  let hops = 0
  while (queue.length > 0) {
    const part = queue.shift()!
    if (part === "" || part === ".") continue
    if (part === "..") {
      if (stack.length === 0) return { problem: "outside" }
      stack.pop()
      continue
    }
    stack.push(part)
    const through = links.get(stack.join("/"))
    if (through === undefined) continue
    if (++hops > MAX_LINK_HOPS) return { problem: "loop" }
    if (through.startsWith("/")) return { problem: "outside" }
    stack.pop()
    queue.unshift(...through.split("/"))
  }
  return { path: stack.join("/") }
}

export class EntryJudge {
  readonly #limits: ExtractLimits
  /** Every symbolic link kept so far, path -> target. */
  readonly #symlinks = new Map<string, string>()
  /** The entry name each link was written under, for messages. */
  readonly #linkNames = new Map<string, string>()
  entries = 0
  bytes = 0

  constructor(limits: ExtractLimits) {
    this.#limits = limits
  }

  /** Why `entry` must not be extracted, or undefined when it may. */
  judge(entry: Pick<ReadEntry, "path" | "type" | "mode" | "size" | "linkpath">): string | undefined {
    const name = JSON.stringify(entry.path)
    this.entries += 1
    this.bytes += entry.size ?? 0
    if (this.entries > this.#limits.maxEntries) {
      return `the archive has more than ${this.#limits.maxEntries} entries (at entry ${name})`
    }
    if (this.bytes > this.#limits.maxBytes) {
      return `the archive unpacks to more than ${this.#limits.maxBytes} bytes (at entry ${name})`
    }
    const normal = normalise(entry.path)
    if ("problem" in normal) return `entry ${name} ${normal.problem}`
    const path = normal.path
    if (!ALLOWED_TYPES.has(entry.type)) {
      return `entry ${name} is ${TYPE_NAMES[entry.type] ?? `of type ${entry.type}`}, which a release may not contain`
    }
    if (((entry.mode ?? 0) & 0o6000) !== 0) {
      return `entry ${name} has the ${(entry.mode ?? 0) & 0o4000 ? "setuid" : "setgid"} bit`
    }
    const top = path.split("/")[0] ?? ""
    if (RESERVED_TOP_LEVEL.has(top)) return `entry ${name} uses ${top}, which is reserved for Sacar`
    const parts = path.split("/")
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/")
      if (this.#symlinks.has(parent)) return `entry ${name} lies beneath the symbolic link ${JSON.stringify(parent)}`
    }
    if (entry.type === "SymbolicLink") {
      const target = entry.linkpath ?? ""
      if (target === "" || target.startsWith("/")) {
        return `entry ${name} is a symbolic link to ${JSON.stringify(target)}, outside the release`
      }
      this.#symlinks.set(path, target)
      this.#linkNames.set(path, entry.path)
      const problem = this.#linkProblem(path, target)
      if (problem !== undefined) return `entry ${name} ${problem}`
    } else {
      // A later entry may replace an earlier link with a real file or directory.
      this.#symlinks.delete(path)
    }
    return undefined
  }

  #linkProblem(path: string, target: string): string | undefined {
    const resolved = resolveLink(path.split("/").slice(0, -1), target, this.#symlinks)
    if (!("problem" in resolved)) return undefined
    return resolved.problem === "loop"
      ? `is a symbolic link to ${JSON.stringify(target)} that goes through more than ${MAX_LINK_HOPS} links`
      : `is a symbolic link to ${JSON.stringify(target)}, outside the release (following the archive's links)`
  }

  /**
   * Every link judged again against the archive's final set of links: a later link can
   * make an earlier, harmless one lead outside. Call once all entries are in.
   */
  finalLinks(): string | undefined {
    for (const [path, target] of this.#symlinks) {
      const problem = this.#linkProblem(path, target)
      if (problem !== undefined) return `entry ${JSON.stringify(this.#linkNames.get(path) ?? path)} ${problem}`
    }
    return undefined
  }
}

const describeCorruption = (error: unknown): string => {
  const code = (error as { code?: unknown }).code
  const text = error instanceof Error ? error.message : String(error)
  if (code === "Z_DATA_ERROR" || code === "Z_BUF_ERROR" || /zlib|gzip|header check/i.test(text)) {
    return `the artifact is not a valid gzip-compressed tar (${text}); check that the build uploaded a .tgz`
  }
  return `the artifact could not be unpacked: ${text}`
}

const isDirectory = (path: string) => Effect.promise(() => stat(path).then((s) => s.isDirectory(), () => false))

export const extract = (input: ExtractInput): Effect.Effect<ExtractResult, ArchiveRejected | LocalFailure> =>
  Effect.gen(function*() {
    const { staging, unpacking } = input.unpacked
    const outcome = yield* Effect.promise(() => unpacking.outcome)
    if (outcome._tag === "Refused") {
      const entry = /entry ("(?:[^"\\]|\\.)*")/.exec(outcome.reason)?.[1]
      return yield* new ArchiveRejected({
        step: "extract",
        retryable: false,
        log: "",
        ...(entry === undefined ? {} : { entry: JSON.parse(entry) as string }),
        message: `refused: ${outcome.reason}; nothing was written outside the release`
      })
    }
    if (outcome._tag === "Broken") {
      const code = (outcome.error as { code?: unknown }).code
      if (code === "ENOSPC" || code === "EACCES" || code === "EROFS" || code === "EMFILE") {
        return yield* localFailure("extract", `cannot unpack into ${staging}`, outcome.error)
      }
      return yield* new ArchiveRejected({
        step: "extract",
        retryable: false,
        log: "",
        message: describeCorruption(outcome.error)
      })
    }
    const meta = join(staging, ".sacar")
    yield* Effect.tryPromise({
      try: () => mkdir(meta, { mode: 0o755 }),
      catch: (cause) => localFailure("extract", `cannot create ${meta}`, cause)
    })
    // Written before the rename, so a release never appears without its source.
    yield* writeMarker(meta, "source", input.source, "extract")
    yield* Effect.tryPromise({
      try: () => rename(staging, input.dest),
      catch: (cause) => localFailure("extract", `cannot move the unpacked release into ${input.dest}`, cause)
    }).pipe(
      // Another reconciler finished the same release first: theirs is identical.
      Effect.catch((error) =>
        isDirectory(input.dest).pipe(Effect.flatMap((there) => there ? Effect.void : Effect.fail(error)))
      )
    )
    return { skipped: false, entries: unpacking.judge.entries, bytes: unpacking.judge.bytes }
  })
