/**
 * Step 3: one preparer per release. The lock is a file in the release's `.sacar/`
 * holding `{pid, host, startedAt}`, created exclusively: written whole to a temporary
 * file, then hard-linked to its name, which fails if the name exists (O_EXCL's
 * guarantee, without a window where the lock exists but is still empty). A lock
 * left by a dead process on this host is taken over; one held by a live process
 * means `ReleaseBusy`, to be retried later. The lock goes when the scope closes.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { renameSync, writeFileSync } from "node:fs"
import { link, readFile, rm, stat, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import { isAlive } from "../../process/alive.ts"
import { localFailure, ReleaseBusy } from "./errors.ts"
import type { LocalFailure } from "./errors.ts"
import { temporaryName } from "./layout.ts"
import { processStartTime, recordedGroupAlive } from "./processes.ts"

export interface LockHolder {
  readonly pid: number
  readonly host: string
  readonly startedAt: string
  /** The holder's kernel start time, so a recycled pid is not mistaken for the holder. */
  readonly processStart?: string | undefined
  /** The process group the holder is running (venv, pip, bin/prepare), to end it if the holder died. */
  readonly child?: { readonly pid: number; readonly processStart: string | undefined } | undefined
}

// A takeover guard older than this was left by a crash in the middle of a takeover.
const STALE_GUARD_MS = 30_000

const readHolder = async (file: string): Promise<LockHolder | undefined> => {
  try {
    const value = JSON.parse(await readFile(file, "utf8")) as Partial<LockHolder>
    return typeof value.pid === "number" && typeof value.host === "string" && typeof value.startedAt === "string"
      ? value as LockHolder
      : undefined
  } catch {
    return undefined
  }
}

const isStale = (holder: LockHolder): boolean =>
  holder.host === hostname() &&
  (!isAlive(holder.pid) || (holder.processStart !== undefined && processStartTime(holder.pid) !== holder.processStart))

/** Create `file` with `content` unless it exists; true when created. */
const createExclusive = async (file: string, content: string): Promise<boolean> => {
  const temp = temporaryName(file, "tmp")
  await writeFile(temp, content, { flag: "wx", mode: 0o644 })
  try {
    await link(temp, file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false
    throw error
  } finally {
    await rm(temp, { force: true })
  }
}

const sameHolder = (a: LockHolder | undefined, b: LockHolder) =>
  a !== undefined && a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt

/** Remove `file` if it still names `stale`, under a guard so two takers cannot both win. */
const takeOver = async (file: string, stale: LockHolder): Promise<void> => {
  const guard = `${file}.takeover`
  if (!(await createExclusive(guard, String(process.pid)))) {
    // The file's mtime is the filesystem's wall clock, so its age is measured against the same clock.
    const age = await stat(guard).then((s) => Date.now() - s.mtimeMs, () => 0)
    if (age > STALE_GUARD_MS) await rm(guard, { force: true })
    return
  }
  try {
    if (sameHolder(await readHolder(file), stale)) {
      killOrphans(stale)
      await rm(file, { force: true })
    }
  } finally {
    await rm(guard, { force: true })
  }
}

/** A dead holder's commands outlive it (they run in their own process groups): end them. */
const killOrphans = (stale: LockHolder) => {
  const child = stale.child
  if (child === undefined || !recordedGroupAlive(child.pid, child.processStart)) return
  try {
    process.kill(-child.pid, "SIGKILL")
  } catch {
    // Already gone.
  }
}

/**
 * Note in the lock the process group now running for `holder`, synchronously, since it is
 * called from spawn; written to a temporary file and renamed over the lock, never torn.
 */
export const recordChild = (file: string, holder: LockHolder, pid: number): void => {
  const temp = temporaryName(file, "tmp")
  writeFileSync(temp, JSON.stringify({ ...holder, child: { pid, processStart: processStartTime(pid) } }) + "\n", {
    mode: 0o644
  })
  renameSync(temp, file)
}

type Attempt = { readonly _tag: "Acquired"; readonly holder: LockHolder } | {
  readonly _tag: "Held"
  readonly holder: LockHolder
}

const attempt = async (file: string): Promise<Attempt> => {
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    // Part of the holder's identity in the lock file (plain async, shared with other processes), not a time Sacar waits on.
    startedAt: new Date().toISOString(),
    processStart: processStartTime(process.pid)
  }
  for (let round = 0; round < 5; round++) {
    if (await createExclusive(file, JSON.stringify(me) + "\n")) return { _tag: "Acquired", holder: me }
    const holder = await readHolder(file)
    if (holder === undefined) {
      // Not a lock Sacar wrote (hand-made or from an older version): only a person should remove it.
      continue
    }
    if (!isStale(holder)) return { _tag: "Held", holder }
    await takeOver(file, holder)
  }
  const holder = await readHolder(file)
  return { _tag: "Held", holder: holder ?? { pid: 0, host: "unknown", startedAt: "unknown" } }
}

/** Hold the release's lock for the rest of the scope. */
export const lockRelease = (file: string): Effect.Effect<LockHolder, ReleaseBusy | LocalFailure, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => attempt(file),
      catch: (cause) => localFailure("lock", `cannot create the lock ${file}`, cause)
    }).pipe(
      Effect.flatMap((result) =>
        result._tag === "Acquired"
          ? Effect.succeed(result.holder)
          : Effect.fail(
            new ReleaseBusy({
              step: "lock",
              holder: result.holder,
              retryable: true,
              log: "",
              message: result.holder.pid === 0
                ? `the lock ${file} is not readable; if no reconciler is preparing this release, remove it`
                : `being prepared by pid ${result.holder.pid} on ${result.holder.host} since ${result.holder.startedAt}; will look again later`
            })
          )
      )
    ),
    (mine) =>
      Effect.promise(async () => {
        // Only remove the lock if it is still ours (a person may have removed and someone retaken it).
        if (sameHolder(await readHolder(file), mine)) await rm(file, { force: true })
      })
  )
