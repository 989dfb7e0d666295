/**
 * Every write of desired state (ReleaseSpec, DeploySpec, AppConfig, lock, pin), for
 * the controller's webhooks, endpoints and leader and for the operator commands alike:
 * creating a release never overwrites one unless asked to (cas=0), a retry rewrites it
 * so failed nodes try again, a deploy request goes through the app's lock in the same
 * transaction as the DeploySpec it writes, and auto-deploy and retention write only
 * over what they decided from (cas). The decisions stay with the callers.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { nowIso } from "../common/time.ts"
import { Consul } from "../consul/consul.ts"
import type { ConsulError, TxnOp } from "../consul/consul.ts"
import { checkArtifactUrl, expandArtifact } from "../spec/artifact.ts"
import { decodeDocument, type DocumentError, encodeDocument } from "../spec/decode.ts"
import { AppConfig, DeploySpec, LockDoc, lockInForce, PinDoc, ReleaseSpec } from "../spec/documents.ts"
import { GitHubRecord } from "../spec/github-record.ts"
import type { Keys } from "../spec/keys.ts"
import { casUpdateGuarded, describeErrors, failedGuard, GuardFailed, WriteConflict } from "./cas.ts"
import { type CommitSeen, recordCommit } from "./github-records.ts"

/** The app cannot get a release from a webhook: no artifact template, or one that expands to a bad URL. */
export class NoArtifact extends Data.TaggedError("NoArtifact")<{ readonly app: string; readonly message: string }> {}

/** Consul refused the DeploySpec transaction for a reason that is not a guard: nothing was written. */
export class DeployNotWritten
  extends Data.TaggedError("DeployNotWritten")<{ readonly key: string; readonly message: string }>
{}

export type LockState =
  | { readonly locked: false; readonly guard: TxnOp }
  | { readonly locked: true; readonly reason: string; readonly guard: TxnOp }

/**
 * A lock that cannot be read counts as a lock: refusing a deploy is the safe mistake.
 * `guard` is the transaction check that the lock key is still as read (absent, or at
 * the same ModifyIndex), so the decision and the DeploySpec write cannot be split by
 * a `sacar lock` in between.
 */
export const readLock = (keys: Keys, app: string): Effect.Effect<LockState, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.lock(app)
    const entry = (yield* consul.get(key)).value
    if (entry === undefined) return { locked: false, guard: { verb: "check-not-exists", key } }
    const guard: TxnOp = { verb: "check-index", key, index: entry.modifyIndex }
    const decoded = decodeDocument(LockDoc, "LockDoc", key, entry.value)
    if (Result.isFailure(decoded))
      return { locked: true, reason: `${decoded.failure.message} (treated as locked)`, guard }
    const lock = decoded.success
    if (!lockInForce(lock, new Date(yield* Clock.currentTimeMillis))) return { locked: false, guard }
    const until = lock.until === undefined ? "" : ` until ${lock.until}`
    return { locked: true, reason: `${app} is locked by ${lock.by}${until}: ${lock.reason}`, guard }
  })

/**
 * Writes the DeploySpec and returns its generation (the key's new ModifyIndex), in one
 * transaction with `guards`. Fails when the transaction does: GuardFailed when a guard
 * did not hold, DeployNotWritten otherwise; never reports a generation that was not written.
 */
export const writeDeploy = (
  keys: Keys,
  app: string,
  spec: DeploySpec,
  guards: ReadonlyArray<TxnOp> = []
): Effect.Effect<number, ConsulError | GuardFailed | DeployNotWritten, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.deploy(app)
    const result = yield* consul.txn([{ verb: "set", key, value: encodeDocument(DeploySpec, spec) }, ...guards])
    if (!result.ok) {
      const guard = failedGuard(result, 1)
      const message = `the DeploySpec of ${app} was not written: ${describeErrors(result)}`
      return yield* guard === undefined
        ? new DeployNotWritten({ key, message })
        : new GuardFailed({ key, guard, message })
    }
    const written = result.entries.find((e) => e.key === key)
    if (written !== undefined && written.modifyIndex > 0) return written.modifyIndex
    // A Consul that does not echo the entry: read the index back.
    const entry = (yield* consul.get(key)).value
    return entry?.modifyIndex ?? 0
  })

// ---------------------------------------------------------------------------------
// ReleaseSpec

export interface ReleaseOrigin {
  /** When it was asked for (the ReleaseSpec's `createdAt`). */
  readonly at: string
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
    createdAt: origin.at,
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

/**
 * Writes the release. A webhook or `sacar notify` never overwrites one (cas=0:
 * "exists"); `sacar release` replaces it (`replace`), which also makes failed nodes
 * try again.
 */
export const createRelease = (
  keys: Keys,
  app: string,
  sha: string,
  spec: ReleaseSpec,
  options: { readonly replace?: boolean } = {}
): Effect.Effect<"created" | "exists" | "replaced", ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.release(app, sha)
    const value = encodeDocument(ReleaseSpec, spec)
    if (yield* consul.put(key, value, { cas: 0 })) return "created" as const
    if (options.replace !== true) return "exists" as const
    yield* consul.put(key, value)
    return "replaced" as const
  })

/** What `createOrReadRelease` found: its release written, or the one already there (as decoded). */
export type ReleaseCreation =
  | { readonly _tag: "Created" }
  | { readonly _tag: "Exists"; readonly existing: Result.Result<ReleaseSpec, DocumentError> }
  /** Deleted each time between the refused create and the read: someone is busy with the key. */
  | { readonly _tag: "Churning" }

const CREATE_ATTEMPTS = 3

/**
 * Creates the release unless one exists (cas=0), and otherwise reads the one that does,
 * so the caller (`POST /v1/apps/<app>/releases`) can tell a repeat from a conflict.
 */
export const createOrReadRelease = (
  keys: Keys,
  app: string,
  sha: string,
  spec: ReleaseSpec
): Effect.Effect<ReleaseCreation, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.release(app, sha)
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
      if (yield* consul.put(key, encodeDocument(ReleaseSpec, spec), { cas: 0 })) return { _tag: "Created" } as const
      const existing = (yield* consul.get(key)).value
      if (existing === undefined) continue // deleted between the two calls: try again
      return { _tag: "Exists", existing: decodeDocument(ReleaseSpec, "ReleaseSpec", key, existing.value) } as const
    }
    return { _tag: "Churning" } as const
  })

/**
 * Removes a release and its GitHubRecord in one transaction, each only if unchanged
 * since read (`releaseIndex`, `recordIndex`): a retry or a webhook that just touched
 * them wins. Says whether they went.
 */
export const pruneRelease = (
  keys: Keys,
  app: string,
  sha: string,
  indexes: { readonly release: number; readonly record?: number | undefined }
): Effect.Effect<boolean, ConsulError, Consul> =>
  Effect.gen(function*() {
    const ops: TxnOp[] = [{ verb: "delete-cas", key: keys.release(app, sha), index: indexes.release }]
    if (indexes.record !== undefined)
      ops.push({ verb: "delete-cas", key: keys.github(app, sha), index: indexes.record })
    return (yield* (yield* Consul).txn(ops)).ok
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
  return Effect.flatMap(nowIso, (at) =>
    casUpdateGuarded(key, (entry) => {
      if (entry === undefined) return encodeDocument(ReleaseSpec, fresh)
      const decoded = decodeDocument(ReleaseSpec, "ReleaseSpec", key, entry.value)
      const kept: ReleaseSpec = Result.isSuccess(decoded) ? decoded.success : fresh
      return encodeDocument(ReleaseSpec, {
        ...kept,
        createdAt: at,
        ...(requestedBy !== undefined ? { requestedBy } : {})
      })
    }, delivery === undefined ? [] : [delivery])).pipe(
      // The only guard is the delivery mark: it exists, so this delivery already acted.
      Effect.catchTag("GuardFailed", () => Effect.succeed("repeat" as const))
    )
}

export type DeployOutcome =
  | { readonly kind: "deployed"; readonly generation: number }
  | { readonly kind: "refused"; readonly reason: string }
  /** The delivery that asked already acted (a redelivery): nothing written. */
  | { readonly kind: "repeat" }

export interface DeployRequest {
  readonly sha: string
  readonly requestedBy: string
  /** `sacar deploy --force` and `sacar rollback`: deploys through a lock, on the record. */
  readonly force?: boolean | undefined
  readonly reason?: string | undefined
  /** The commit on GitHub that asked: a refusal is kept in its record so the check run can say why. */
  readonly commit?: CommitSeen | undefined
  /** Ties the new generation to the GitHub Deployment that asked, so the leader reports on it. */
  readonly deploymentId?: number | undefined
  /** The delivery's mark (webhook/deliveries.ts), created in the same transaction as the DeploySpec. */
  readonly delivery?: TxnOp | undefined
}

/**
 * Auto-deploy's write: the DeploySpec under cas on the deploy key's index the decision
 * was made from (0: none), and with it the commit's GitHubRecord under cas on its own
 * index, in one transaction. Says whether it was written: an operator's deploy or
 * rollback, or another write of the record, meanwhile wins.
 */
export const requestAutoDeploy = (
  keys: Keys,
  app: string,
  deploy: { readonly spec: DeploySpec; readonly index: number },
  record?: { readonly doc: GitHubRecord; readonly index: number }
): Effect.Effect<boolean, ConsulError, Consul> =>
  Effect.gen(function*() {
    const ops: TxnOp[] = [{
      verb: "cas",
      key: keys.deploy(app),
      index: deploy.index,
      value: encodeDocument(DeploySpec, deploy.spec)
    }]
    if (record !== undefined) {
      ops.push({
        verb: "cas",
        key: keys.github(app, deploy.spec.sha),
        index: record.index,
        value: encodeDocument(GitHubRecord, record.doc)
      })
    }
    return (yield* (yield* Consul).txn(ops)).ok
  })

const LOCK_ATTEMPTS = 4

/**
 * Someone asked to deploy `sha`. A lock turns it down unless `force`; a pin does not
 * (pins only pause auto-deploy). The lock is checked again inside the DeploySpec's
 * transaction (its key absent, or unchanged since read), so a `sacar lock` between the
 * read and the write stops the deploy; the decision is then made again from the new lock.
 */
export const requestDeploy = (keys: Keys, app: string, request: DeployRequest) =>
  Effect.gen(function*() {
    const { commit } = request
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      const lock = yield* readLock(keys, app)
      if (lock.locked && request.force !== true) {
        if (commit !== undefined) {
          const at = yield* nowIso
          yield* recordCommit(keys, app, commit, (r) => ({
            ...r,
            refused: { reason: lock.reason, by: request.requestedBy, at }
          }))
        }
        return { kind: "refused", reason: lock.reason } satisfies DeployOutcome as DeployOutcome
      }
      // A forced deploy goes through whatever lock there is, so only the delivery guards it.
      const lockGuards = request.force === true ? [] : [lock.guard]
      const guards = request.delivery === undefined ? lockGuards : [...lockGuards, request.delivery]
      const spec: DeploySpec = {
        sha: request.sha,
        requestedBy: request.requestedBy,
        requestedAt: yield* nowIso,
        ...(request.force === true ? { force: true } : {}),
        ...(request.reason !== undefined ? { reason: request.reason } : {})
      }
      const written = yield* writeDeploy(keys, app, spec, guards).pipe(
        Effect.map((generation) => ({ generation })),
        Effect.catchTag("GuardFailed", (e) => Effect.succeed({ guard: e.guard }))
      )
      if ("guard" in written) {
        if (written.guard === lockGuards.length) return { kind: "repeat" } satisfies DeployOutcome as DeployOutcome
        continue // the lock changed since it was read: decide again
      }
      const { generation } = written
      if (commit !== undefined) {
        // An earlier refusal no longer applies once a deploy went through.
        const { deploymentId } = request
        yield* recordCommit(keys, app, commit, ({ refused: _refused, ...r }) =>
          deploymentId === undefined ? r : { ...r, deployment: { generation, id: deploymentId } })
      }
      return { kind: "deployed", generation } satisfies DeployOutcome as DeployOutcome
    }
    return yield* new WriteConflict({
      key: keys.lock(app),
      message: `${
        keys.lock(app)
      } changed ${LOCK_ATTEMPTS} times while a deploy of ${app} was being written; not written`
    })
  })

// ---------------------------------------------------------------------------------
// AppConfig, lock and pin: what operators write (operator/actions.ts validates first)

/**
 * Writes the app's config; only if the key is still at `cas` (0: absent), so two
 * `sacar app set` at once cannot lose each other's fields. Says whether it was written.
 */
export const putAppConfig = (
  keys: Keys,
  app: string,
  config: AppConfig,
  cas: number
): Effect.Effect<boolean, ConsulError, Consul> =>
  Consul.use((consul) => consul.put(keys.config(app), encodeDocument(AppConfig, config), { cas }))

/** Locks the app (`sacar lock`): deploys are refused with `lock.reason` until it is removed or `until` passes. */
export const putLock = (keys: Keys, app: string, lock: LockDoc): Effect.Effect<boolean, ConsulError, Consul> =>
  Consul.use((consul) => consul.put(keys.lock(app), encodeDocument(LockDoc, lock)))

/** Pins the app at `pin.sha` (`sacar rollback`): auto-deploy pauses until it is removed. */
export const putPin = (keys: Keys, app: string, pin: PinDoc): Effect.Effect<boolean, ConsulError, Consul> =>
  Consul.use((consul) => consul.put(keys.pin(app), encodeDocument(PinDoc, pin)))

/** Deletes a document (`sacar unlock`, `sacar unpin`); says whether there was anything to delete. */
export const removeDocument = (key: string): Effect.Effect<boolean, ConsulError, Consul> =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const existed = (yield* consul.get(key)).value !== undefined
    if (existed) yield* consul.delete(key)
    return existed
  })
