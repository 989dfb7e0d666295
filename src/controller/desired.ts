/**
 * The controller's writes to KV, shared by the webhook handlers and the notify
 * endpoint. Every write is idempotent or guarded by cas, because any replica may take
 * any webhook and GitHub may deliver one twice: creating a release never overwrites
 * one (cas=0), the per-commit GitHubRecord is merged under cas so replicas never lose
 * each other's fields, and the only deliberate re-writes (retry, deploy) are ones a
 * person asked for.
 */
import { Data, Effect, Result } from "effect"
import { Consul } from "../consul/Consul.ts"
import type { ConsulError, KvEntry, TxnOp } from "../consul/Consul.ts"
import { checkArtifactUrl, expandArtifact } from "../spec/artifact.ts"
import { decodeDocument, encodeDocument } from "../spec/decode.ts"
import { ReleaseSpec } from "../spec/documents.ts"
import type { AppConfig } from "../spec/documents.ts"
import { GitHubRecord } from "../spec/github-record.ts"
import type { Keys } from "../spec/keys.ts"
import { casUpdate, casUpdateGuarded, readLock, WriteConflict, writeDeploy } from "../state/writes.ts"

/** The app cannot get a release from a webhook: no artifact template, or one that expands to a bad URL. */
export class NoArtifact extends Data.TaggedError("NoArtifact")<{ readonly app: string; readonly message: string }> {}

const now = () => new Date().toISOString()

// ---------------------------------------------------------------------------------
// GitHubRecord: the per-commit memory the leader reports from.

export interface CommitSeen {
  readonly repo: string
  readonly sha: string
  readonly ref?: string | undefined
  readonly branch?: string | null | undefined
  readonly installationId?: number | undefined
  /**
   * A push to the app's deploy branch: the commit is on that branch now, whatever an
   * earlier delivery (a merge-queue or feature branch) recorded first.
   */
  readonly onDeployBranch?: boolean | undefined
}

const decodeRecord = (key: string, entry: KvEntry | undefined): GitHubRecord | undefined => {
  if (entry === undefined) return undefined
  const decoded = decodeDocument(GitHubRecord, "GitHubRecord", key, entry.value)
  // An unreadable record is replaced: the leader cannot use it either.
  return Result.isSuccess(decoded) ? decoded.success : undefined
}

/** Changes the record of `app` at `sha`, creating it from `seen` when absent. */
export const updateRecord = (
  keys: Keys,
  app: string,
  seen: CommitSeen,
  change: (record: GitHubRecord) => GitHubRecord
) => {
  const key = keys.github(app, seen.sha)
  return casUpdate(key, (entry) => {
    const existing = decodeRecord(key, entry)
    const base: GitHubRecord = existing ?? { repo: seen.repo, sha: seen.sha, createdAt: now() }
    // Fill what the record lacks; what a delivery says never erases what is known,
    // except a push to the deploy branch, which settles the commit's branch.
    const settles = seen.onDeployBranch === true
    const filled: GitHubRecord = {
      ...base,
      ...((base.ref === undefined || settles) && seen.ref !== undefined ? { ref: seen.ref } : {}),
      ...((base.branch === undefined || settles) && seen.branch !== undefined ? { branch: seen.branch } : {}),
      ...(base.installationId === undefined && seen.installationId !== undefined
        ? { installationId: seen.installationId }
        : {})
    }
    const updated = change(filled)
    if (existing !== undefined && JSON.stringify(updated) === JSON.stringify(existing)) return undefined
    return encodeDocument(GitHubRecord, updated)
  })
}

export const readRecord = (
  keys: Keys,
  app: string,
  sha: string
): Effect.Effect<GitHubRecord | undefined, ConsulError, Consul> =>
  Effect.gen(function*() {
    const key = keys.github(app, sha)
    return decodeRecord(key, (yield* (yield* Consul).get(key)).value)
  })

/** Records that the controller should report on this commit (push, check_suite). */
export const recordCommit = (keys: Keys, app: string, seen: CommitSeen) => updateRecord(keys, app, seen, (r) => r)

// ---------------------------------------------------------------------------------
// ReleaseSpec

export interface ReleaseOrigin {
  readonly ref?: string | undefined
  readonly source: string
  readonly requestedBy?: string | undefined
}

/** The ReleaseSpec a webhook writes: the app's artifact template filled in for `sha`. */
export const releaseFromTemplate = (
  app: string,
  config: AppConfig,
  sha: string,
  origin: ReleaseOrigin
): Result.Result<ReleaseSpec, NoArtifact> => {
  if (config.artifact === undefined) {
    return Result.fail(
      new NoArtifact({
        app,
        message: `${app} has no "artifact" template in its AppConfig; use sacar notify or sacar release with --artifact`
      })
    )
  }
  const url = expandArtifact(config.artifact, app, sha)
  const checked = checkArtifactUrl(url)
  if (Result.isFailure(checked))
    return Result.fail(new NoArtifact({ app, message: `${app}: ${checked.failure.message}` }))
  return Result.succeed({
    artifact: checked.success,
    ...(origin.ref !== undefined ? { ref: origin.ref } : {}),
    createdAt: now(),
    source: origin.source,
    ...(origin.requestedBy !== undefined ? { requestedBy: origin.requestedBy } : {})
  })
}

/** The release of `sha` as it is now; undefined when absent. One that does not decode counts as `{}`. */
export const readRelease = (
  keys: Keys,
  app: string,
  sha: string
): Effect.Effect<ReleaseSpec | undefined, ConsulError, Consul> =>
  Effect.gen(function*() {
    const key = keys.release(app, sha)
    const entry = (yield* (yield* Consul).get(key)).value
    if (entry === undefined) return undefined
    const decoded = decodeDocument(ReleaseSpec, "ReleaseSpec", key, entry.value)
    return Result.isSuccess(decoded) ? decoded.success : {}
  })

/** Writes the release unless one is there already (cas=0). */
export const createRelease = (keys: Keys, app: string, sha: string, spec: ReleaseSpec) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const created = yield* consul.put(keys.release(app, sha), encodeDocument(ReleaseSpec, spec), { cas: 0 })
    return created ? ("created" as const) : ("exists" as const)
  })

/**
 * Writes the release again so nodes whose attempt failed try once more: reconcilers
 * retry when the key's ModifyIndex moves, and Consul only moves it when the bytes
 * change, so the rewrite carries a fresh `createdAt` and who asked. What the release
 * is (artifact, checksum, ref) is kept. Absent: written from `fresh`.
 */
export const retryRelease = (
  keys: Keys,
  app: string,
  sha: string,
  fresh: ReleaseSpec,
  requestedBy: string | undefined,
  delivery?: TxnOp
): Effect.Effect<"written" | "unchanged" | "repeat", ConsulError | WriteConflict, Consul> => {
  const key = keys.release(app, sha)
  return casUpdateGuarded(key, (entry) => {
    if (entry === undefined) return encodeDocument(ReleaseSpec, fresh)
    const decoded = decodeDocument(ReleaseSpec, "ReleaseSpec", key, entry.value)
    const kept: ReleaseSpec = Result.isSuccess(decoded) ? decoded.success : fresh
    return encodeDocument(ReleaseSpec, {
      ...kept,
      createdAt: now(),
      ...(requestedBy !== undefined ? { requestedBy } : {})
    })
  }, delivery === undefined ? [] : [delivery]).pipe(
    // The only guard is the delivery mark: it exists, so this delivery already acted.
    Effect.catchTag("GuardFailed", () => Effect.succeed("repeat" as const))
  )
}

// ---------------------------------------------------------------------------------
// DeploySpec, guarded by the lock (readLock)

export type DeployOutcome =
  | { readonly kind: "deployed"; readonly generation: number }
  | { readonly kind: "refused"; readonly reason: string }
  /** The delivery that asked already acted (a redelivery): nothing written. */
  | { readonly kind: "repeat" }

export interface DeployRequestOptions {
  /** Ties the new generation to the GitHub Deployment that asked, so the leader reports on it. */
  readonly deploymentId?: number | undefined
  /** The delivery's mark (webhook/deliveries.ts), created in the same transaction as the DeploySpec. */
  readonly delivery?: TxnOp | undefined
}

const LOCK_ATTEMPTS = 4

/**
 * A person asked GitHub to deploy `sha`. A lock turns it down, and the refusal is kept
 * in the commit's record so the check run can say why; a pin does not (pins only pause
 * auto-deploy). The lock is checked again inside the DeploySpec's transaction (its
 * key absent, or unchanged since read), so a `sacar lock` between the read and the
 * write stops the deploy; the decision is then made again from the new lock.
 */
export const requestDeploy = (
  keys: Keys,
  app: string,
  seen: CommitSeen,
  requestedBy: string,
  options: DeployRequestOptions = {}
) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      const lock = yield* readLock(keys, app)
      if (lock.locked) {
        yield* updateRecord(
          keys,
          app,
          seen,
          (r) => ({ ...r, refused: { reason: lock.reason, by: requestedBy, at: now() } })
        )
        return { kind: "refused", reason: lock.reason } satisfies DeployOutcome as DeployOutcome
      }
      const guards = options.delivery === undefined ? [lock.guard] : [lock.guard, options.delivery]
      const written = yield* writeDeploy(keys, app, { sha: seen.sha, requestedBy, requestedAt: now() }, guards).pipe(
        Effect.map((generation) => ({ generation })),
        Effect.catchTag("GuardFailed", (e) => Effect.succeed({ guard: e.guard }))
      )
      if ("guard" in written) {
        if (written.guard === 1) return { kind: "repeat" } satisfies DeployOutcome as DeployOutcome
        continue // the lock changed since it was read: decide again
      }
      const { generation } = written
      // An earlier refusal no longer applies once a deploy went through.
      yield* updateRecord(keys, app, seen, ({ refused: _refused, ...r }) =>
        options.deploymentId === undefined ? r : { ...r, deployment: { generation, id: options.deploymentId } })
      return { kind: "deployed", generation } satisfies DeployOutcome as DeployOutcome
    }
    return yield* new WriteConflict({
      key: keys.lock(app),
      message: `${
        keys.lock(app)
      } changed ${LOCK_ATTEMPTS} times while a deploy of ${app} was being written; not written`
    })
  })
