/**
 * Step 2: the tarball unpacked into `releases/<sha>`. Every entry is judged before
 * anything of it is written (node-tar's `filter` runs ahead of its own checks, which
 * stay on as a second line in strict mode); the first refused entry aborts the whole
 * extraction. Unpacking happens in a temporary directory next to the release and is
 * renamed into place only when complete, so `releases/<sha>` existing means it is whole.
 */
import * as Effect from "effect/Effect"
import { createReadStream } from "node:fs"
import { mkdir, rename, rm, stat } from "node:fs/promises"
import { Unpack } from "tar"
import type { ReadEntry } from "tar"
import { removeLeftovers } from "./download.ts"
import { ArchiveRejected, localFailure } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { RESERVED_TOP_LEVEL, temporaryName } from "./layout.ts"

export interface ExtractLimits {
  /** Sum of the entries' sizes. */
  readonly maxBytes: number
  readonly maxEntries: number
}

export const defaultExtractLimits: ExtractLimits = { maxBytes: 2 * 1024 ** 3, maxEntries: 100_000 }

export interface ExtractInput {
  readonly tarball: string
  /** `releases/<sha>`; must not exist yet unless a previous run completed it. */
  readonly dest: string
  readonly limits?: ExtractLimits
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

// After a parse error node-tar may still be finishing files it had started.
const SETTLE_AFTER_ERROR_MS = 500

const unpackInto = (tarball: string, staging: string, judge: EntryJudge, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    let refused: string | undefined
    let failure: unknown
    let settled = false
    const unpack: Unpack = new Unpack({
      cwd: staging,
      strict: true,
      preserveOwner: false,
      // Once one entry is refused the rest is only read past, never written, so the
      // extraction ends on its own and nothing is still being written when the caller
      // removes the staging directory.
      filter: (_path, entry) => refused === undefined && (refused = judge.judge(entry as ReadEntry)) === undefined
    })
    const source = createReadStream(tarball)
    const settle = () => {
      if (settled) return
      settled = true
      signal.removeEventListener("abort", stop)
      source.destroy()
      refused ??= failure === undefined ? judge.finalLinks() : undefined
      if (refused !== undefined) reject(new Refused(refused))
      else if (failure !== undefined) reject(failure)
      else resolve()
    }
    const fail = (error: unknown) => {
      failure ??= error
      source.unpipe(unpack)
      setTimeout(settle, SETTLE_AFTER_ERROR_MS)
    }
    function stop() {
      fail(new Error("interrupted"))
      unpack.abort(new Error("interrupted"))
    }
    signal.addEventListener("abort", stop, { once: true })
    unpack.on("error", fail)
    unpack.on("close", settle)
    source.on("error", fail)
    source.pipe(unpack)
  })

class Refused extends Error {}

const describeCorruption = (error: unknown): string => {
  const code = (error as { code?: unknown }).code
  const text = error instanceof Error ? error.message : String(error)
  if (code === "Z_DATA_ERROR" || code === "Z_BUF_ERROR" || /zlib|gzip|header check/i.test(text)) {
    return `the artifact is not a valid gzip-compressed tar (${text}); check that the build uploaded a .tgz`
  }
  return `the artifact could not be unpacked: ${text}`
}

const removeStaging = (staging: string) =>
  Effect.promise(() =>
    rm(staging, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch(() => undefined)
  ).pipe(
    Effect.tap(() =>
      Effect.promise(() => stat(staging).then(() => true, () => false)).pipe(
        Effect.flatMap((left) =>
          left
            ? Effect.logWarning("could not remove an extraction directory; the next run will", { staging })
            : Effect.void
        )
      )
    )
  )

export const extract = (input: ExtractInput): Effect.Effect<ExtractResult, ArchiveRejected | LocalFailure> =>
  Effect.gen(function*() {
    if (yield* Effect.promise(() => stat(input.dest).then((s) => s.isDirectory(), () => false))) {
      return { skipped: true, entries: 0, bytes: 0 }
    }
    yield* removeLeftovers(input.dest)
    const staging = temporaryName(input.dest, "extract")
    const judge = new EntryJudge(input.limits ?? defaultExtractLimits)
    return yield* Effect.gen(function*() {
      yield* Effect.tryPromise({
        try: () => mkdir(staging, { mode: 0o755 }),
        catch: (cause) => localFailure("extract", `cannot create ${staging}`, cause)
      })
      yield* Effect.tryPromise({
        try: (signal) => unpackInto(input.tarball, staging, judge, signal),
        catch: (error) => {
          if (error instanceof Refused) {
            const entry = /entry ("(?:[^"\\]|\\.)*")/.exec(error.message)?.[1]
            return new ArchiveRejected({
              step: "extract",
              retryable: false,
              log: "",
              ...(entry === undefined ? {} : { entry: JSON.parse(entry) as string }),
              message: `refused: ${error.message}; nothing was written outside the release`
            })
          }
          const code = (error as { code?: unknown }).code
          if (code === "ENOSPC" || code === "EACCES" || code === "EROFS" || code === "EMFILE") {
            return localFailure("extract", `cannot unpack into ${staging}`, error)
          }
          return new ArchiveRejected({ step: "extract", retryable: false, log: "", message: describeCorruption(error) })
        }
      })
      yield* Effect.tryPromise({
        try: async () => {
          await mkdir(`${staging}/.sacar`, { mode: 0o755 })
          await rename(staging, input.dest)
        },
        catch: (cause) => localFailure("extract", `cannot move the unpacked release into ${input.dest}`, cause)
      }).pipe(
        // Another reconciler finished the same release first: theirs is identical.
        Effect.catch((error) =>
          Effect.promise(() => stat(input.dest).then((s) => s.isDirectory(), () => false)).pipe(
            Effect.flatMap((there) => there ? Effect.void : Effect.fail(error))
          )
        )
      )
      return { skipped: false, entries: judge.entries, bytes: judge.bytes }
    }).pipe(Effect.ensuring(removeStaging(staging)))
  })
