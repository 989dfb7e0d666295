/** Shared set-up for the step tests: a scratch SACAR_ROOT, real services, a report log. */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { after } from "node:test"
import { ArtifactStore, makeArtifactStore } from "../../../src/artifacts/store.ts"
import { Python } from "../../../src/python/python.ts"
import { prepareRelease } from "../../../src/reconciler/steps/pipeline.ts"
import type {
  PreparedRelease,
  PrepareReleaseInput,
  ReleaseError,
  Step,
  StepEvent
} from "../../../src/reconciler/steps/pipeline.ts"
import { nodePython, seedPipCache } from "../../support/node-python.ts"

export const SHA = "0123456789abcdef0123456789abcdef01234567"

export const scratch = async (t: { after: (f: () => Promise<void>) => void }, name = "sacar-steps-") => {
  const dir = await mkdtemp(join(tmpdir(), name))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

// One shared pip per test file, as on a node that has prepared before: unpacked and
// compiled once per machine, hard-linked here (test/support/node-python.ts).
const pipCacheRoot = await mkdtemp(join(tmpdir(), "sacar-pip-cache-"))
after(() => rm(pipCacheRoot, { recursive: true, force: true }))
export const PIP_CACHE = join(pipCacheRoot, "pip")
seedPipCache(await nodePython(), PIP_CACHE)

export const Services = Layer.mergeAll(
  Layer.succeed(
    ArtifactStore,
    makeArtifactStore({ retry: { baseDelay: "10 millis", maxDelay: "50 millis", retries: 3 } })
  ),
  Python.layer
)

export interface Run {
  readonly exit: Exit.Exit<PreparedRelease, ReleaseError>
  readonly events: ReadonlyArray<readonly [Step, StepEvent["_tag"]]>
}

export const run = async (input: PrepareReleaseInput): Promise<Run> => {
  const events: Array<readonly [Step, StepEvent["_tag"]]> = []
  const exit = await Effect.runPromiseExit(
    prepareRelease(input, (step, event) => Effect.sync(() => void events.push([step, event._tag]))).pipe(
      Effect.provide(Services)
    )
  )
  return { exit, events }
}

export const failureOf = (exit: Exit.Exit<unknown, ReleaseError>): ReleaseError => {
  if (!Exit.isFailure(exit)) throw new Error("expected the release to fail, it succeeded")
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (!reason || reason._tag !== "Fail")
    throw new Error(`expected a typed failure, got ${exit.cause.reasons.map((r) => r._tag).join(", ")}`)
  return reason.error
}

export const successOf = <A>(exit: Exit.Exit<A, ReleaseError>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw new Error(`expected success: ${JSON.stringify(failureOf(exit))}`)
}

export const input = (root: string, url: string, extra: Partial<PrepareReleaseInput> = {}): PrepareReleaseInput => ({
  app: "shop",
  sha: SHA,
  node: "web-1",
  root,
  artifact: { url },
  prepareTimeoutMs: 120_000,
  defaultPython: "python3",
  pipCache: PIP_CACHE,
  ...extra
})

/** Every path under `dir`, relative, sorted. */
export const snapshot = async (dir: string): Promise<Array<string>> => {
  const entries = await readdir(dir, { recursive: true })
  return entries.map((e) => relative(dir, join(dir, e))).sort()
}

/** Whether `pid` has ended: gone, or a zombie waiting for a (possibly lazy) init to reap it. */
export const hasEnded = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return true
  }
}

/**
 * A RECORD with each hash and size replaced by whether it matches the file now: files
 * that name their venv differ between venvs, and so do their hashes.
 */
export const checkedRecord = async (record: string, text: string) =>
  (await Promise.all(
    text.split("\r\n").map(async (row) => {
      const [path, hash, size] = row.split(",")
      if (!hash) return row
      const data = await readFile(join(dirname(dirname(record)), path!))
      const ok = hash === `sha256=${createHash("sha256").update(data).digest("base64url")}` &&
        Number(size) === data.length
      return `${path},${ok ? "<matches>" : "<stale>"}`
    })
  )).join("\r\n")
