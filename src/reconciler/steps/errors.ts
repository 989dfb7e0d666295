/**
 * Why a release could not be prepared. Every member names its step, says what to do in
 * `message`, carries the end of the relevant output in `log` (at most 4 KiB), and
 * says whether trying again later can help (`retryable`: network trouble, another
 * reconciler holding the release) or a person has to act (a bad tarball, a checksum
 * mismatch, a missing wheel, a failing bin/prepare).
 */
import * as Data from "effect/Data"
import type { ProcessFailed, ProcessTimedOut } from "../../process/run.ts"

export type Step = "download" | "extract" | "lock" | "venv" | "install" | "prepare"
export const STEPS: ReadonlyArray<Step> = ["download", "extract", "lock", "venv", "install", "prepare"]

interface Common {
  readonly step: Step
  readonly message: string
  readonly log: string
  readonly retryable: boolean
}

/** The artifact could not be fetched or did not match its checksum. */
export class ArtifactUnavailable extends Data.TaggedError("ArtifactUnavailable")<
  Common & {
    readonly url: string
    readonly status?: number
  }
> {}

/** The tarball is corrupt, too large, or holds an entry Sacar refuses to write. */
export class ArchiveRejected extends Data.TaggedError("ArchiveRejected")<
  Common & {
    /** The offending entry as written in the archive, when one is to blame. */
    readonly entry?: string
  }
> {}

/** Another live process is preparing this release; look again later. */
export class ReleaseBusy extends Data.TaggedError("ReleaseBusy")<
  Common & {
    readonly holder: { readonly pid: number; readonly host: string; readonly startedAt: string }
  }
> {}

/** The interpreter the release asks for is not on this node, or has no pip to install with. */
export class PythonUnavailable extends Data.TaggedError("PythonUnavailable")<
  Common & {
    readonly requested: string
  }
> {}

/** A command of the pipeline (venv creation, pip, bin/prepare) failed or ran out of time. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<
  Common & {
    readonly command: string
    readonly exitCode: number | null
    readonly signal: string | null
    readonly timedOut: boolean
  }
> {}

/**
 * A step's child process failed or timed out: what the process runner reported, in
 * the step's terms. `message` turns the runner's error into the sentence to show.
 */
export const commandFailed = (
  step: Step,
  command: string,
  error: ProcessFailed | ProcessTimedOut,
  message: (error: ProcessFailed | ProcessTimedOut) => string
): CommandFailed =>
  new CommandFailed({
    step,
    command,
    exitCode: error._tag === "ProcessFailed" ? error.exitCode : null,
    signal: error._tag === "ProcessFailed" ? error.signal : null,
    timedOut: error._tag === "ProcessTimedOut",
    retryable: false,
    log: error.tail,
    message: message(error)
  })

/** The whole pipeline overran the app's prepareTimeout. */
export class PrepareTimedOut extends Data.TaggedError("PrepareTimedOut")<
  Common & {
    readonly timeoutMs: number
  }
> {}

/** The local disk refused (full, read-only, permissions) or the input named no valid release. */
export class LocalFailure extends Data.TaggedError("LocalFailure")<Common> {}

export type ReleaseError =
  | ArtifactUnavailable
  | ArchiveRejected
  | ReleaseBusy
  | PythonUnavailable
  | CommandFailed
  | PrepareTimedOut
  | LocalFailure

/** A file-system failure during `step`; ENOSPC and friends can heal once space is freed. */
export const localFailure = (step: Step, what: string, cause: unknown): LocalFailure => {
  const code = (cause as { code?: unknown } | undefined)?.code
  const text = cause instanceof Error ? cause.message : String(cause)
  return new LocalFailure({
    step,
    log: "",
    retryable: code === "ENOSPC" || code === "EMFILE" || code === "ENFILE" || code === "EBUSY",
    message: `${what}: ${text}`
  })
}
