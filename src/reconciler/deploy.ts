/**
 * One deploy generation on this node, from `waiting` to `live` or `failed`:
 * 1. the release is ready (the plan only starts a deploy then; checked again here),
 *    and the app is not locked: the lock is read fresh here, and while it holds the
 *    deploy waits on it with a blocking query, holding nothing else (the node does
 *    not watch the lock otherwise: watch-desired.ts);
 * 2. the run-once pre-deploy has succeeded somewhere in the cluster (predeploy.ts);
 * 3. a slot of the app's semaphore (`sacar/<app>/locks/deploy/`, `maxParallel` FIFO
 *    lanes, consul/semaphore.ts) is taken;
 * 4. no node has failed this generation (else: halted, `bin/deploy` never starts): one
 *    read of `sacar/<app>/locks/halt/<generation>`, which the first node to fail the
 *    generation creates before giving back its slot — one key, whatever the fleet;
 * 5. `bin/deploy` runs, bounded by `deployTimeout`;
 * 6. `previous` then `current` are switched atomically;
 * 7. the status (`live`, or `failed` with the log tail) is written before the slot is
 *    given back, so the next node's halt check sees it.
 *
 * A crash anywhere leaves the status at a non-final phase, so the restarted reconciler
 * runs the generation again: `bin/deploy` must be idempotent. `current` only ever
 * moves to a release whose ready marker is there.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { join } from "node:path"
import { nowIso } from "../common/time.ts"
import { Consul, isTransientConsulError } from "../consul/consul.ts"
import type { ConsulError } from "../consul/consul.ts"
import { slotLost } from "../consul/semaphore-loss.ts"
import { acquireSemaphore } from "../consul/semaphore.ts"
import { openSession } from "../consul/session.ts"
import { decodeDocument, encodeDocument } from "../spec/decode.ts"
import type { AppConfig, DeployPhase, DeployStatus } from "../spec/documents.ts"
import { durationMillis, formatDuration } from "../spec/duration.ts"
import type { Keys } from "../spec/keys.ts"
import { shortSha } from "../spec/names.ts"
import { appDir, isReady, observeDisk, switchLink } from "./disk.ts"
import { sessionName } from "./membership.ts"
import type { AppDisk } from "./plan.ts"
import { frozenBy, HALTED_PREFIX, haltReason } from "./plan.ts"
import type { PeerDeploy } from "./plan.ts"
import { predeploy } from "./predeploy.ts"
import { readAppLock } from "./read-desired.ts"
import { groupFile, runScript } from "./scripts.ts"
import type { StatusWriter } from "./status.ts"
import type { ScriptContext } from "./steps/environment.ts"
import { releasePaths } from "./steps/layout.ts"

export const DEPLOY_SESSION_TTL = "10s"

/** How long one blocking read of a freeze waits at most: Consul's default wait. */
const FROZEN_WAIT_MS = 5 * 60_000

interface Frozen {
  readonly message: string
  /** The lock key's index as read: the blocking read returns when it moves. */
  readonly index: number
  /** When the lock ends by itself (ms since the epoch), if it says. */
  readonly until: number | undefined
}

export interface DeployInput {
  readonly keys: Keys
  readonly node: string
  readonly root: string
  readonly app: string
  readonly config: AppConfig
  readonly generation: number
  readonly sha: string
  readonly status: StatusWriter
  /** The DeploySpec is forced: it goes through a lock. */
  readonly force: boolean
}

/** What `locks/halt/<generation>` holds: the node whose failure halts the rollout, and why. */
const HaltDoc = Schema.Struct({ node: Schema.String, message: Schema.String })

/**
 * The halt record of a generation as a peer list for `haltReason` (empty or one). A
 * record that does not decode still halts: something failed, the key says where.
 */
const haltOf = (keys: Keys, app: string, generation: number) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const { value: entry } = yield* consul.get(keys.halt(app, generation))
    if (entry === undefined) return []
    const decoded = decodeDocument(HaltDoc, "halt record", entry.key, entry.value)
    const doc = Result.isSuccess(decoded) ? decoded.success : { node: "another node", message: decoded.failure.message }
    const peer: PeerDeploy = { node: doc.node, generation, phase: "failed", message: doc.message }
    return [peer]
  })

/**
 * Records that `node` failed `generation`, unless a failure is recorded already (the
 * first one is the root cause; nodes halted by it point there). Written before the
 * slot is given back, so the next holder's halt check sees it.
 */
export const recordHalt = (keys: Keys, app: string, generation: number, node: string, message: string) =>
  Consul.use((consul) => consul.put(keys.halt(app, generation), encodeDocument(HaltDoc, { node, message }), { cas: 0 }))
    .pipe(
      Effect.asVoid,
      Effect.catch((error) => Effect.logWarning(`cannot record the halt of generation ${generation}: ${error.message}`))
    )

/** Generations kept besides the newest: a node that has not yet seen a new DeploySpec may still read them. */
const KEEP_OLD_GENERATIONS = 1

/**
 * Removes run-once and halt records of all but the newest generations before
 * `generation` (generations are ModifyIndexes: ordered, not consecutive). Done by the
 * node that ran the pre-deploy, so once per generation.
 */
const removeOldGenerations = (keys: Keys, app: string, generation: number) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    for (const prefix of [keys.predeploys(app), keys.halts(app)]) {
      const older = (yield* consul.keys(prefix))
        .map((key) => ({ key, generation: Number(key.slice(prefix.length)) }))
        .filter((g) => Number.isInteger(g.generation) && g.generation < generation)
        .sort((a, b) => b.generation - a.generation)
      for (const { key } of older.slice(KEEP_OLD_GENERATIONS)) yield* consul.delete(key)
    }
  }).pipe(Effect.catch((error) => Effect.logWarning(`cannot remove old deploy records of ${app}: ${error.message}`)))

export const runDeploy = (input: DeployInput): Effect.Effect<void, never, Consul> =>
  Effect.flatMap(nowIso, (startedAt) => deploySince(input, startedAt))

const deploySince = (input: DeployInput, startedAt: string): Effect.Effect<void, never, Consul> => {
  const { app, sha, generation, node, root, keys, status } = input
  const paths = releasePaths(root, app, sha)
  const timeoutMs = durationMillis(input.config.deployTimeout)

  const report = (phase: DeployPhase, message: string, extra: Partial<DeployStatus> = {}) =>
    Effect.flatMap(nowIso, (at) =>
      status.update((s) => ({
        ...s,
        deploy: {
          generation,
          sha,
          phase,
          message,
          startedAt,
          ...(phase === "live" || phase === "failed" ? { finishedAt: at } : {}),
          ...extra
        }
      })))
  const fail = (message: string, log?: string) =>
    // The node's own failure first, then the halt others read: whoever is halted by it
    // can already find the failure it names.
    report("failed", message, log === undefined || log === "" ? {} : { log }).pipe(
      Effect.andThen(status.flush),
      Effect.andThen(
        message.startsWith(HALTED_PREFIX) ? Effect.void : recordHalt(keys, app, generation, node, message)
      ),
      Effect.andThen(Effect.logWarning(`deploy ${app} ${sha} generation ${generation}: failed: ${message}`))
    )

  /** A freeze in force now, read from Consul, with the index to wait on for its change. */
  const freezeNow = Effect.gen(function*() {
    const consul = yield* Consul
    const read = yield* consul.get(keys.lock(app))
    const lock = read.value === undefined ? undefined : readAppLock(read.value)
    const message = frozenBy(lock, input.force, yield* Clock.currentTimeMillis)
    const until = lock !== undefined && "doc" in lock && lock.doc.until !== undefined
      ? Date.parse(lock.doc.until)
      : undefined
    return message === undefined ? undefined : { message, index: read.index, until } satisfies Frozen
  })

  /**
   * Returns when the lock key changes (a blocking query: an unlock is seen at once) or
   * its `until` passes; otherwise after Consul's default wait of 5 minutes.
   */
  const untilLockChanges = (frozen: Frozen) =>
    Effect.gen(function*() {
      const consul = yield* Consul
      const leftMs = frozen.until === undefined
        ? FROZEN_WAIT_MS
        : Math.min(FROZEN_WAIT_MS, Math.max(1_000, frozen.until - (yield* Clock.currentTimeMillis)))
      yield* consul.get(keys.lock(app), { index: frozen.index, wait: `${Math.ceil(leftMs / 1000)}s` })
    })

  /**
   * Waits, holding no slot and no session, while the app is locked; each freeze is
   * written to the status once, so `sacar status` says who locked it and why.
   */
  const whileFrozen = Effect.gen(function*() {
    let shown: string | undefined
    let frozen: Frozen | undefined = yield* freezeNow
    while (frozen !== undefined) {
      if (frozen.message !== shown) {
        yield* report("waiting", frozen.message)
        yield* status.flush
        shown = frozen.message
      }
      yield* untilLockChanges(frozen)
      frozen = yield* freezeNow
    }
  })

  /** Steps 3 to 7 holding a slot; returns whether a freeze was found instead of running bin/deploy. */
  const withSlot = (context: ScriptContext, before: AppDisk) =>
    Effect.scoped(Effect.gen(function*() {
      yield* report("waiting", `waiting for a deploy slot (maxParallel ${input.config.maxParallel})`)
      const session = yield* openSession({
        name: sessionName("deploy", node),
        ttl: DEPLOY_SESSION_TTL,
        behavior: "delete",
        lockDelay: "0s"
      })
      const slot = yield* acquireSemaphore(keys.deploySemaphore(app), session.id, input.config.maxParallel, {
        value: node
      })

      const halted = haltReason(node, generation, yield* haltOf(keys, app, generation))
      if (halted !== undefined) return yield* fail(halted)
      // Locked while this node waited for the pre-deploy or the slot: give the slot back.
      const frozen = yield* freezeNow
      if (frozen !== undefined) return true

      yield* report("deploying", "running bin/deploy")
      // A slot lost (the session destroyed or expired, an agent restart) stops bin/deploy:
      // another node may take the slot, and maxParallel must hold.
      const raced = yield* Effect.raceFirst(
        Effect.result(runScript("deploy", context, timeoutMs, groupFile(appDir(root, app), "deploy"))),
        Effect.raceFirst(session.lost, slotLost(slot, session.id)).pipe(
          Effect.map((reason) => ({ _tag: "Lost" as const, reason }))
        )
      )
      if (raced._tag === "Lost") {
        return yield* fail(`deploy slot lost while bin/deploy ran (${raced.reason}); bin/deploy was stopped`)
      }
      const ran = raced
      if (Result.isFailure(ran)) return yield* fail(ran.failure.message, ran.failure.log)

      if (!(yield* isReady(root, app, sha)))
        return yield* fail(`release ${shortSha(sha)} is no longer ready on this node; current not switched`)
      if (before.current !== null && before.current !== sha) yield* switchLink(root, app, "previous", before.current)
      yield* switchLink(root, app, "current", sha)
      const after = yield* observeDisk(root, app)
      yield* status.update((s) => ({ ...s, current: after.current, previous: after.previous }))
      const took = formatDuration((yield* Clock.currentTimeMillis) - Date.parse(startedAt))
      // A live deploy's output is not kept: the status stays small, failures keep theirs.
      yield* report("live", `live in ${took}; ${ran.success.message}`)
      yield* status.flush
      yield* Effect.logInfo(`deploy ${app} ${sha} generation ${generation}: live in ${took}`)
      return false
    }))

  // Typed so that Consul's tagged errors stay apart from the disk's plain ones (the retry below tells them apart).
  const body: Effect.Effect<void, Error | ConsulError, Consul> = Effect.gen(function*() {
    // A lock set before the deploy stops it before the pre-deploy (migrations) runs.
    yield* whileFrozen
    yield* report("waiting", `deploying ${shortSha(sha)} (generation ${generation})`)
    yield* status.flush
    if (!(yield* isReady(root, app, sha))) return yield* fail(`release ${shortSha(sha)} is not ready on this node`)

    const before = yield* observeDisk(root, app)
    const previousDir = before.current === null ? "" : releasePaths(root, app, before.current).dir
    const context = { app, sha, node, releaseDir: paths.dir, venv: paths.venv, previousReleaseDir: previousDir }

    yield* report("predeploy", "waiting for the pre-deploy")
    const pre = yield* predeploy({
      key: keys.predeploy(app, generation),
      generation,
      context,
      timeoutMs,
      groupFile: groupFile(appDir(root, app), "pre-deploy"),
      resultFile: join(appDir(root, app), ".pre-deploy.result"),
      onProgress: (message) => report("predeploy", message)
    })
    yield* Effect.logInfo(
      `pre-deploy ${app} ${sha} generation ${generation}: ${
        pre._tag === "Failed" ? "failed" : "succeeded"
      } on ${pre.doc.node}`
    )
    if (pre.doc.node === node) yield* removeOldGenerations(keys, app, generation)
    if (pre._tag === "Failed") {
      return yield* fail(
        `pre-deploy failed on ${pre.doc.node}: ${pre.doc.message ?? "bin/pre-deploy failed"}`,
        pre.doc.log
      )
    }

    // Locked between the first look and the slot: wait without holding the slot, then
    // take it again; done once a turn with the slot was not frozen.
    let frozen: boolean | void = yield* withSlot(context, before)
    while (frozen === true) {
      yield* whileFrozen
      frozen = yield* withSlot(context, before)
    }
  })

  return body.pipe(
    // Consul unreachable: the whole sequence is safe to run again (the pre-deploy
    // result is recorded, a slot is given back when its scope closes).
    Effect.tapError((error) => Effect.logWarning(`deploy of ${app} generation ${generation}: ${error.message}`)),
    Effect.retry({
      schedule: Schedule.spaced("2 seconds"),
      while: (error) => "_tag" in error && isTransientConsulError(error)
    }),
    // A semaphore conflict, Consul refusing, the disk refusing: report and stop; a new
    // generation (or a restart) tries again.
    Effect.catch((error) => fail(`deploy could not complete: ${error.message}`)),
    Effect.catchDefect((defect) =>
      fail(`deploy could not complete: ${defect instanceof Error ? defect.message : String(defect)}`)
    ),
    Effect.annotateLogs({ app, sha, generation, node })
  )
}
