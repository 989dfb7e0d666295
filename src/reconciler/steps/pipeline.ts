/**
 * prepareRelease: one release, from artifact URL to a ready directory with its venv,
 * as a fixed list of steps (download, extract, lock, venv, install, prepare). Each
 * step skips itself when its result is already on disk, so running again after a
 * crash at any point converges on the same release; the `ready` marker is written
 * last, under the lock, only after every step has completed.
 *
 * What is on disk is trusted only for the attempt that made it: a release directory
 * whose recorded source (url and sha256, written at extraction) differs from the
 * spec's, or whose last attempt failed, is removed and the release starts clean, so a
 * retry fetches and checks what the spec says now.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import { rename, rm, stat } from "node:fs/promises"
import { isAbsolute } from "node:path"
import { ArtifactStore } from "../../artifacts/store.ts"
import { nowIso } from "../../common/time.ts"
import { Python } from "../../python/python.ts"
import { isAppName, isNodeName, isSha } from "../../spec/names.ts"
import { download } from "./download.ts"
import { LocalFailure, PrepareTimedOut } from "./errors.ts"
import type { ReleaseError, Step } from "./errors.ts"
import { extract } from "./extract.ts"
import type { ExtractLimits } from "./extract.ts"
import { install } from "./install.ts"
import { LaterWork } from "./later.ts"
import { releasePaths, temporaryName } from "./layout.ts"
import type { ReleasePaths } from "./layout.ts"
import { lockRelease, recordChild } from "./lock.ts"
import { hasMarker, readMarker, writeMarker } from "./markers.ts"
import { runPrepare } from "./prepare-script.ts"
import { makeSpare, templateStore } from "./reuse.ts"
import { ensureVenv } from "./venv.ts"

export type { ReleaseError, Step } from "./errors.ts"

export interface PrepareReleaseInput {
  readonly app: string
  readonly sha: string
  readonly node: string
  /** SACAR_ROOT */
  readonly root: string
  readonly artifact: { readonly url: string; readonly sha256?: string | undefined }
  /** Bounds the whole pipeline, bin/prepare included. */
  readonly prepareTimeoutMs: number
  /** SACAR_PYTHON */
  readonly defaultPython: string
  readonly extractLimits?: ExtractLimits
  /** Where the shared pip is unpacked; `$SACAR_ROOT/.sacar/pip` by default. */
  readonly pipCache?: string
}

export type StepEvent =
  | { readonly _tag: "Started" }
  | {
    readonly _tag: "Finished"
    readonly ms: number
    readonly skipped: boolean
    /** The release whose installed dependencies this one copied instead of running pip. */
    readonly reusedFrom?: string
  }
  | { readonly _tag: "Failed"; readonly ms: number; readonly error: ReleaseError }

/** Called as each step starts, finishes or fails; the loop turns these into NodeStatus. */
export type ReportStep = (step: Step, event: StepEvent) => Effect.Effect<void>

/** A step's duration; `reusedFrom` on the step whose work was copied from another release. */
export interface StepTime {
  readonly ms: number
  readonly reusedFrom?: string
}

export interface PreparedRelease {
  readonly dir: string
  readonly venv: string
  readonly python: { readonly path: string; readonly version: string }
  /** Per-step durations of the run that made the release ready. */
  readonly steps: Partial<Record<Step, StepTime>>
  readonly ms: number
  /** e.g. `prepared in 41.2s` */
  readonly message: string
  /** True when the release was already ready and nothing ran. */
  readonly alreadyReady: boolean
}

interface ReadyMarker {
  readonly python: { readonly path: string; readonly version: string }
  readonly steps: Partial<Record<Step, StepTime>>
  readonly ms: number
  readonly message: string
}

const invalidInput = (message: string) => new LocalFailure({ step: "download", retryable: false, log: "", message })

const validate = (input: PrepareReleaseInput): LocalFailure | undefined => {
  if (!isAppName(input.app)) return invalidInput(`invalid app name ${JSON.stringify(input.app)}`)
  if (!isSha(input.sha)) return invalidInput(`invalid commit sha ${JSON.stringify(input.sha)}`)
  if (!isNodeName(input.node)) return invalidInput(`invalid node name ${JSON.stringify(input.node)}`)
  if (!isAbsolute(input.root))
    return invalidInput(`SACAR_ROOT must be an absolute path, not ${JSON.stringify(input.root)}`)
  if (input.artifact.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(input.artifact.sha256)) {
    return invalidInput(`artifact sha256 ${JSON.stringify(input.artifact.sha256)} is not 64 hex characters`)
  }
  return undefined
}

interface Source {
  readonly url: string
  readonly sha256: string | null
}

const sourceOf = (input: PrepareReleaseInput): Source => ({
  url: input.artifact.url,
  sha256: input.artifact.sha256?.toLowerCase() ?? null
})

const sameSource = (recorded: unknown, wanted: Source) =>
  typeof recorded === "object" && recorded !== null &&
  (recorded as Source).url === wanted.url && (recorded as Source).sha256 === wanted.sha256

/**
 * Remove what an earlier attempt left, under the release's lock (a live preparer of
 * the same release makes this one wait). The directory is renamed away first, so a
 * crash part-way leaves a dead writer's leftover, not half a release.
 */
const startClean = (paths: ReleasePaths) =>
  Effect.scoped(Effect.gen(function*() {
    yield* lockRelease(paths.lock)
    const gone = temporaryName(paths.dir, "tmp")
    yield* Effect.tryPromise({
      try: () => rename(paths.dir, gone),
      catch: (cause) =>
        new LocalFailure({
          step: "download",
          retryable: false,
          log: "",
          message: `cannot move the earlier attempt's ${paths.dir} away to start again: ${String(cause)}`
        })
    })
    yield* Effect.promise(() => rm(gone, { recursive: true, force: true }))
  }))

export const prepareRelease = (
  input: PrepareReleaseInput,
  report: ReportStep
): Effect.Effect<PreparedRelease, ReleaseError, ArtifactStore | Python> =>
  Effect.suspend(() => {
    const invalid = validate(input)
    if (invalid) return Effect.fail(invalid)
    const paths = releasePaths(input.root, input.app, input.sha)
    const started = performance.now()
    const steps: Partial<Record<Step, StepTime>> = {}
    let current: Step = "download"
    let stepStarted = started

    const step = <A extends { readonly skipped: boolean; readonly reusedFrom?: string }, E extends ReleaseError, R>(
      name: Step,
      work: Effect.Effect<A, E, R>
    ) =>
      Effect.gen(function*() {
        current = name
        stepStarted = performance.now()
        yield* report(name, { _tag: "Started" })
        const result = yield* work.pipe(
          Effect.tapError((error) =>
            report(name, { _tag: "Failed", ms: Math.round(performance.now() - stepStarted), error })
          )
        )
        const ms = Math.round(performance.now() - stepStarted)
        const reused = result.reusedFrom === undefined ? {} : { reusedFrom: result.reusedFrom }
        steps[name] = { ms, ...reused }
        yield* report(name, { _tag: "Finished", ms, skipped: result.skipped, ...reused })
        return result
      })

    const pipeline = Effect.gen(function*() {
      const deadline = (yield* Clock.currentTimeMillis) + input.prepareTimeoutMs
      const ready = (yield* readMarker(paths.meta, "ready")) as ReadyMarker | undefined
      if (ready !== undefined && typeof ready === "object" && ready.python !== undefined) {
        return { dir: paths.dir, venv: paths.venv, ...ready, alreadyReady: true } satisfies PreparedRelease
      }

      const source = sourceOf(input)
      const isExtracted = Effect.promise(() => stat(paths.dir).then((s) => s.isDirectory(), () => false))
      if (
        (yield* isExtracted) &&
        ((yield* hasMarker(paths.meta, "failed")) || !sameSource(yield* readMarker(paths.meta, "source"), source))
      ) {
        yield* startClean(paths)
      }
      if (yield* isExtracted) {
        yield* step("download", Effect.succeed({ skipped: true }))
        yield* step("extract", Effect.succeed({ skipped: true }))
      } else {
        // One pass: the download unpacks as it goes; extract moves the result into place.
        yield* Effect.scoped(Effect.gen(function*() {
          const fetched = yield* step(
            "download",
            download({
              url: input.artifact.url,
              sha256: input.artifact.sha256,
              dest: paths.dir,
              cache: paths.artifactCache,
              limits: input.extractLimits
            })
          )
          yield* step("extract", extract({ unpacked: fetched.unpacked, dest: paths.dir, source }))
        }))
      }

      return yield* Effect.scoped(Effect.gen(function*() {
        const { holder } = yield* step(
          "lock",
          lockRelease(paths.lock).pipe(Effect.map((holder) => ({ skipped: false, holder })))
        )
        // If this process dies, whoever takes the lock over ends the command it was running.
        const onSpawn = (pid: number) => {
          try {
            recordChild(paths.lock, holder, pid)
          } catch {
            // Best effort: without it a crash leaves the command to finish on its own.
          }
        }
        const templates = templateStore(input.root)
        const venv = yield* step(
          "venv",
          ensureVenv({
            releaseDir: paths.dir,
            venv: paths.venv,
            meta: paths.meta,
            defaultPython: input.defaultPython,
            templates,
            pipCache: input.pipCache ?? paths.pipCache,
            onSpawn
          })
        )
        const installed = yield* step(
          "install",
          install({
            releaseDir: paths.dir,
            venv: paths.venv,
            meta: paths.meta,
            interpreter: venv.interpreter,
            pipCache: input.pipCache ?? paths.pipCache,
            templates,
            root: input.root,
            app: input.app,
            sha: input.sha,
            dependencies: venv.dependencies,
            plan: venv.plan,
            onSpawn
          })
        )
        // For the releases after this one (later.ts): the template's copy and publishing,
        // then the copy of it the next release with these dependencies takes. Not recorded
        // in the lock, which names the one command a takeover must end (bin/prepare); a
        // copy outliving a crash only fills a staging directory.
        const dependencies = venv.dependencies
        const later = (installed.keeping ?? Effect.void).pipe(
          Effect.andThen(
            dependencies?._tag === "Reusable"
              ? makeSpare({ store: templates, digest: dependencies.digest })
              : Effect.void
          )
        )
        // The node's fibers take it; without a node, it runs beside bin/prepare on the
        // other core and is awaited below.
        const node = yield* LaterWork
        const beside = node === undefined
          ? yield* Effect.forkScoped(later)
          : yield* FiberSet.run(node, later).pipe(Effect.as(undefined))
        yield* step(
          "prepare",
          runPrepare({
            app: input.app,
            sha: input.sha,
            node: input.node,
            releaseDir: paths.dir,
            venv: paths.venv,
            meta: paths.meta,
            timeoutMs: Math.max(1, deadline - (yield* Clock.currentTimeMillis)),
            onSpawn
          })
        )
        if (beside !== undefined) yield* Fiber.join(beside)
        if (installed.compilingPip !== undefined) yield* Fiber.join(installed.compilingPip)
        const ms = Math.round(performance.now() - started)
        const marker: ReadyMarker = {
          python: { path: venv.interpreter.path, version: venv.interpreter.version },
          steps,
          ms,
          message: `prepared in ${(ms / 1000).toFixed(1)}s`
        }
        yield* writeMarker(paths.meta, "ready", marker, "prepare")
        return { dir: paths.dir, venv: paths.venv, ...marker, alreadyReady: false } satisfies PreparedRelease
      }))
    })

    return pipeline.pipe(
      Effect.timeoutOrElse({
        duration: input.prepareTimeoutMs,
        orElse: () => {
          const error = new PrepareTimedOut({
            step: current,
            timeoutMs: input.prepareTimeoutMs,
            retryable: current === "download" || current === "lock",
            log: "",
            message:
              `preparing took longer than the prepareTimeout (${input.prepareTimeoutMs} ms) during ${current}; ` +
              (current === "download"
                ? "the artifact store is slow or failing"
                : "raise prepareTimeout or speed up the release")
          })
          return report(current, { _tag: "Failed", ms: Math.round(performance.now() - stepStarted), error }).pipe(
            Effect.andThen(Effect.fail(error))
          )
        }
      }),
      // The next attempt (a rewritten spec) must not build on this one's leftovers.
      Effect.tapError((error) =>
        error.retryable
          ? Effect.void
          : Effect.flatMap(nowIso, (at) => writeMarker(paths.meta, "failed", { at, step: error.step }, error.step))
            .pipe(
              Effect.ignore
            )
      ),
      Effect.withSpan("prepareRelease", { attributes: { app: input.app, sha: input.sha } })
    )
  })
