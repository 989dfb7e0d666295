/**
 * One GitHub pass: bring every check run (or commit status) and every Deployment in
 * line with a Snapshot. Each commit is handled on its own, so one failing call only
 * delays that commit: it is tried again after a backoff, from whatever KV says then.
 *
 * Coalescing: a check run is sent only when its rendered digest differs from what was
 * last reported, and at most once per `coalesceMs`. What was reported lives in the
 * GitHubRecord (`reported`, `checkRunId`), so a new leader continues where the old one
 * stopped; this replica's memory of its own recent sends covers the moment before
 * its record writes come back through the watch.
 */
import * as Effect from "effect/Effect"
import { Consul } from "../../consul/Consul.ts"
import type { GitHubError } from "../../github/errors.ts"
import type { GitHubShape } from "../../github/GitHub.ts"
import { durationMillis, formatDuration } from "../../spec/duration.ts"
import type { GitHubRecord } from "../../spec/github-record.ts"
import type { Keys } from "../../spec/keys.ts"
import { shortSha } from "../../spec/names.ts"
import { readRecord, updateRecord } from "../../state/github-records.ts"
import type { Metrics } from "../metrics.ts"
import { phaseOf, updateGap } from "./pacing.ts"
import { recordExpiry } from "./pruning.ts"
import type { PruningSettings } from "./pruning.ts"
import type { DeployState } from "./release-view.ts"
import { artifactDeadline, checkRunName, digestOf, prepareDeadline, render, toCommitStatus } from "./render.ts"
import type { CheckView, CommitStatusView } from "./render.ts"
import type { AppSnapshot, Snapshot } from "./snapshot.ts"
import { appFacts, commitTargets } from "./targets.ts"
import type { CommitTarget } from "./targets.ts"

/** A new DeploySpec generation waits this long for the `deployment` webhook to claim it. */
export const DEPLOYMENT_GRACE_MS = 3_000
const RETRY_BASE_MS = 2_000
const RETRY_MAX_MS = 60_000

interface Sent {
  readonly digest: string
  readonly at: number
  readonly status: string
  readonly checkRunId: number | undefined
  /** pacing.ts phaseOf; undefined when only the record (another term) says what was sent. */
  readonly phase?: string | undefined
}

/** What one leader term remembers between passes (lost with the term, rebuilt from KV). */
export interface ReporterMemory {
  readonly sent: Map<string, Sent>
  readonly failures: Map<string, { readonly retryAt: number; readonly count: number; readonly parked: boolean }>
  readonly firstSeen: Map<string, number>
  /** Deployments this term created or updated, by `<app>/<generation>`. */
  readonly deployments: Map<string, { readonly id: number; readonly state: DeployState | "inactive" | undefined }>
}

export const newMemory = (): ReporterMemory => ({
  sent: new Map(),
  failures: new Map(),
  firstSeen: new Map(),
  deployments: new Map()
})

export interface GitHubPassOptions {
  readonly keys: Keys
  readonly github: GitHubShape
  readonly publicUrl: string | undefined
  readonly coalesceMs: number
  readonly metrics: Metrics | undefined
  readonly memory: ReporterMemory
  readonly now: () => number
  /** SACAR_RECORD_TTL and SACAR_ARTIFACT_WAIT (pruning.ts). */
  readonly pruning: Pick<PruningSettings, "recordTtlMs" | "artifactWaitMs">
}

type Failure = { readonly _tag: "GitHubError"; readonly message: string } | {
  readonly _tag: string
  readonly message: string
}

const splitRepo = (repo: string) => {
  const [owner = "", name = ""] = repo.split("/")
  return { owner, repo: name }
}

/** Counts every GitHub call in sacar_github_requests_total{operation,status}. */
const counted = <A>(
  options: GitHubPassOptions,
  operation: string,
  okStatus: number,
  call: Effect.Effect<A, GitHubError>
) =>
  call.pipe(
    Effect.tap(() =>
      Effect.sync(() => options.metrics?.inc("sacar_github_requests_total", { operation, status: String(okStatus) }))
    ),
    Effect.tapError((e) =>
      Effect.sync(() => options.metrics?.inc("sacar_github_requests_total", { operation, status: String(e.status) }))
    )
  )

/** The newer of what this replica sent and what the record says was sent. */
const lastReported = (memory: ReporterMemory, id: string, record: GitHubRecord): Sent | undefined => {
  const mine = memory.sent.get(id)
  const recorded = record.reported === undefined
    ? undefined
    : {
      digest: record.reported.digest,
      at: Date.parse(record.reported.at) || 0,
      status: record.reported.status,
      checkRunId: record.checkRunId
    }
  if (mine === undefined) return recorded
  if (recorded === undefined) return mine
  return recorded.at > mine.at ? recorded : { ...mine, checkRunId: mine.checkRunId ?? record.checkRunId }
}

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * Sends the check run of one commit if it changed. Returns when to look again (a
 * coalescing window or a prepare deadline), or undefined.
 */
const reportCheckRun = (options: GitHubPassOptions, target: CommitTarget, view: CheckView) =>
  Effect.gen(function*() {
    const { memory, github, keys } = options
    const id = `${target.app}/${target.sha}`
    const digest = digestOf(view)
    const last = lastReported(memory, id, target.record.doc)
    const checkRunId = last?.checkRunId ?? target.record.doc.checkRunId
    if (last !== undefined && last.digest === digest && checkRunId !== undefined) return undefined
    const now = options.now()
    const phase = phaseOf(view, target.input.release.failed.length)
    const gap = updateGap(options.coalesceMs, target.input.startedAt, now)
    if (last !== undefined && last.phase === phase && now - last.at < gap) return last.at + gap

    const where = { ...splitRepo(target.record.doc.repo), installationId: target.record.doc.installationId }
    const body = {
      status: view.status,
      conclusion: view.conclusion,
      title: view.title,
      summary: view.summary,
      text: view.text,
      detailsUrl: view.detailsUrl,
      actions: view.actions
    }
    // A run that completed and must show progress again (a retried release) is a new
    // run, as GitHub's own re-runs are: a completed run does not go back to in progress.
    const reopen = last?.status === "completed" && view.status !== "completed"
    let runId = checkRunId
    if (runId === undefined || reopen) {
      // The snapshot may predate our own write of checkRunId: ask Consul before creating.
      const fresh = yield* readRecord(keys, target.app, target.sha)
      if (fresh === undefined) return undefined
      if (!reopen && fresh.checkRunId !== undefined) {
        runId = fresh.checkRunId
      } else {
        // A create GitHub applied but whose answer was lost (5xx, timeout), or made by a
        // leader that died before recording it, is found here and adopted: one run per commit.
        const existing = yield* counted(
          options,
          "findCheckRun",
          200,
          github.findCheckRun({
            ...where,
            name: checkRunName(target.app),
            headSha: target.sha,
            externalId: id,
            exclude: reopen ? checkRunId : undefined
          })
        )
        if (existing !== undefined) {
          // Adopted: the update below brings it up to date and records its id.
          yield* Effect.logInfo(`check run ${checkRunName(target.app)} on ${shortSha(target.sha)} found; adopted`)
          runId = existing.id
        }
      }
      if (runId === undefined || (reopen && runId === checkRunId)) {
        const created = yield* counted(
          options,
          "createCheckRun",
          201,
          github.createCheckRun({
            ...where,
            ...body,
            name: checkRunName(target.app),
            headSha: target.sha,
            externalId: id
          })
        )
        runId = created.id
        const at = options.now()
        memory.sent.set(id, { digest, at, status: view.status, checkRunId: runId, phase })
        yield* Effect.logInfo(`check run ${checkRunName(target.app)} created on ${shortSha(target.sha)}: ${view.title}`)
        yield* recordReported(options, target, runId, digest, at, view)
        return undefined
      }
    }
    yield* counted(options, "updateCheckRun", 200, github.updateCheckRun({ ...where, ...body, checkRunId: runId }))
    const at = options.now()
    memory.sent.set(id, { digest, at, status: view.status, checkRunId: runId, phase })
    yield* Effect.logDebug(`check run ${checkRunName(target.app)} on ${shortSha(target.sha)}: ${view.title}`)
    yield* recordReported(options, target, runId, digest, at, view)
    return undefined
  })

const recordReported = (
  options: GitHubPassOptions,
  target: CommitTarget,
  checkRunId: number | undefined,
  digest: string,
  at: number,
  view: { readonly status: string; readonly conclusion?: string | undefined }
) =>
  updateRecord(options.keys, target.app, target.sha, (current) =>
    current === undefined
      ? undefined
      : {
        ...current,
        ...(checkRunId !== undefined ? { checkRunId } : {}),
        reported: {
          digest,
          at: iso(at),
          status: view.status,
          ...(view.conclusion !== undefined ? { conclusion: view.conclusion } : {})
        }
      })

/** Token mode: one commit status per app and commit, context `sacar/<app>`. */
const reportCommitStatus = (options: GitHubPassOptions, target: CommitTarget, status: CommitStatusView) =>
  Effect.gen(function*() {
    const { memory } = options
    const id = `${target.app}/${target.sha}`
    const digest = digestOf(status)
    const last = lastReported(memory, id, target.record.doc)
    if (last !== undefined && last.digest === digest) return undefined
    const now = options.now()
    if (last !== undefined && now - last.at < options.coalesceMs) return last.at + options.coalesceMs
    yield* counted(
      options,
      "createCommitStatus",
      201,
      options.github.createCommitStatus({
        ...splitRepo(target.record.doc.repo),
        installationId: target.record.doc.installationId,
        sha: target.sha,
        state: status.state,
        context: checkRunName(target.app),
        description: status.description,
        targetUrl: status.targetUrl
      })
    )
    const at = options.now()
    memory.sent.set(id, { digest, at, status: status.state, checkRunId: undefined })
    yield* recordReported(options, target, undefined, digest, at, { status: status.state })
    return undefined
  })

/**
 * Mirrors the app's current deploy generation to a GitHub Deployment: creates it
 * unless the record already names one for this generation (a `deployment` webhook
 * made it), then sends in_progress and the final state, each once.
 */
const mirrorDeployment = (options: GitHubPassOptions, snapshot: Snapshot, appName: string) =>
  Effect.gen(function*() {
    const app = snapshot.apps.get(appName)
    const config = app?.config
    if (app === undefined || config?.repo === undefined) return undefined
    const deploy = appFacts(app, config, snapshot.nodes).deploy
    if (deploy === undefined) return undefined
    const { keys, github, memory } = options
    yield* retireSuperseded(options, app, config.environment, deploy.generation)
    const record = app.github.get(deploy.sha)?.doc
    const repo = record?.repo ?? config.repo
    const where = { ...splitRepo(repo), installationId: record?.installationId }
    const memoryKey = `${appName}/${deploy.generation}`
    const recorded = record?.deployment?.generation === deploy.generation ? record.deployment : undefined
    // The snapshot may not show our own last write yet; what this term sent is newer.
    let mirrored = memory.deployments.has(memoryKey)
      ? { generation: deploy.generation, ...memory.deployments.get(memoryKey)! }
      : recorded

    if (mirrored?.id === undefined) {
      const seenKey = `deploy/${appName}/${deploy.generation}`
      const firstSeen = memory.firstSeen.get(seenKey) ?? options.now()
      memory.firstSeen.set(seenKey, firstSeen)
      if (options.now() - firstSeen < DEPLOYMENT_GRACE_MS) return firstSeen + DEPLOYMENT_GRACE_MS
      const fresh = yield* readRecord(keys, appName, deploy.sha)
      if (fresh?.deployment?.generation === deploy.generation && fresh.deployment.id !== undefined) return undefined
      const generation = deploy.generation
      // A Deployment an earlier create made (its answer lost, or its leader gone) is adopted.
      const existing = yield* counted(
        options,
        "findDeployment",
        200,
        github.findDeployment({
          ...where,
          sha: deploy.sha,
          environment: config.environment,
          matches: (payload) => isMirrorOf(payload, appName, generation)
        })
      )
      const created = existing ?? (yield* counted(
        options,
        "createDeployment",
        201,
        github.createDeployment({
          ...where,
          ref: deploy.sha,
          environment: config.environment,
          description: `sacar: ${appName} ${shortSha(deploy.sha)} (generation ${deploy.generation}${
            deploy.requestedBy ? `, ${deploy.requestedBy}` : ""
          })`,
          // The `sacar` key marks the Deployment as a mirror, so its `deployment` webhook is not taken as a new request.
          payload: {
            sacar: {
              app: appName,
              generation: deploy.generation,
              ...(deploy.requestedBy ? { requestedBy: deploy.requestedBy } : {})
            }
          }
        })
      ))
      mirrored = { generation: deploy.generation, id: created.id }
      memory.deployments.set(memoryKey, { id: created.id, state: undefined })
      yield* Effect.logInfo(
        `deployment ${created.id} ${existing === undefined ? "created" : "found and adopted"} for ${appName} ${
          shortSha(deploy.sha)
        } (generation ${deploy.generation})`
      )
      const saved = mirrored
      yield* updateRecord(keys, appName, deploy.sha, (current) => ({
        ...(current ?? { repo, sha: deploy.sha, createdAt: new Date(options.now()).toISOString() }),
        deployment: saved
      }))
    }
    const deploymentId = mirrored.id!
    // Every deployment shows in_progress before its outcome.
    const sequence: ReadonlyArray<DeployState> = mirrored.state === undefined && deploy.state !== "in_progress"
      ? ["in_progress", deploy.state]
      : mirrored.state === deploy.state
      ? []
      : [deploy.state]
    for (const state of sequence) {
      yield* counted(
        options,
        "createDeploymentStatus",
        201,
        github.createDeploymentStatus({
          ...where,
          deploymentId,
          state,
          description: state === "in_progress" && deploy.state !== "in_progress" ? "deploying" : deploy.description,
          environment: config.environment,
          logUrl: options.publicUrl ? `${options.publicUrl}/v1/apps/${appName}` : undefined
        })
      )
      memory.deployments.set(memoryKey, { id: deploymentId, state })
      yield* Effect.logInfo(`deployment ${deploymentId} of ${appName}: ${state} (${deploy.description})`)
      yield* updateRecord(keys, appName, deploy.sha, (current) =>
        current === undefined
          ? undefined
          : { ...current, deployment: { generation: deploy.generation, id: deploymentId, state } })
    }
    return undefined
  })

/** Whether a Deployment's payload (an object, or JSON text) marks it as the mirror of `app`'s `generation`. */
const isMirrorOf = (payload: unknown, app: string, generation: number): boolean => {
  let p = payload
  if (typeof p === "string") {
    try {
      p = JSON.parse(p)
    } catch {
      return false
    }
  }
  const sacar = (p as { sacar?: { app?: unknown; generation?: unknown } } | null)?.sacar
  return sacar?.app === app && sacar.generation === generation
}

/**
 * A Deployment whose generation was replaced by a newer DeploySpec before it finished
 * would stay "in progress" on GitHub forever: it is marked inactive, once.
 */
const retireSuperseded = (options: GitHubPassOptions, app: AppSnapshot, environment: string, current: number) =>
  Effect.forEach([...app.github.values()], ({ doc }) => {
    const d = doc.deployment
    if (d?.id === undefined || d.generation >= current || (d.state !== undefined && d.state !== "in_progress"))
      return Effect.void
    const memoryKey = `${app.app}/${d.generation}`
    if (options.memory.deployments.get(memoryKey)?.state === "inactive") return Effect.void
    const id = d.id
    return Effect.gen(function*() {
      yield* counted(
        options,
        "createDeploymentStatus",
        201,
        options.github.createDeploymentStatus({
          ...splitRepo(doc.repo),
          installationId: doc.installationId,
          deploymentId: id,
          state: "inactive",
          description: `superseded by deploy generation ${current} before it finished`,
          environment
        })
      )
      options.memory.deployments.set(memoryKey, { id, state: "inactive" })
      yield* updateRecord(
        options.keys,
        app.app,
        doc.sha,
        (r) =>
          r?.deployment?.generation === d.generation
            ? { ...r, deployment: { ...r.deployment, state: "inactive" } }
            : undefined
      )
    })
  }, { discard: true })

/** An error GitHub will answer the same way every time (422, a missing permission, an app not installed). */
const PARKED_MS = 60 * 60_000

const isPermanent = (error: Failure): error is GitHubError =>
  error._tag === "GitHubError" && (error as GitHubError).retryable === false

/**
 * Runs `work` for one key unless it is backing off; failures schedule the next try.
 * An error GitHub will never accept is parked instead: logged once, counted in
 * sacar_github_parked_total{operation,status}, and tried again only after an hour (a
 * permission granted or the App installed meanwhile), not every minute forever.
 */
const guarded = (
  options: GitHubPassOptions,
  key: string,
  what: string,
  work: Effect.Effect<number | undefined, Failure, Consul>
): Effect.Effect<number | undefined, never, Consul> =>
  Effect.suspend(() => {
    const failing = options.memory.failures.get(key)
    const now = options.now()
    if (failing !== undefined && failing.retryAt > now)
      return Effect.succeed(failing.parked ? undefined : failing.retryAt)
    return work.pipe(
      Effect.tap(() => Effect.sync(() => options.memory.failures.delete(key))),
      Effect.catch((error: Failure) => {
        const count = (failing?.count ?? 0) + 1
        if (isPermanent(error)) {
          options.memory.failures.set(key, { retryAt: options.now() + PARKED_MS, count, parked: true })
          if (failing?.parked === true) return Effect.succeed(undefined)
          options.metrics?.inc("sacar_github_parked_total", {
            operation: error.operation,
            status: String(error.status)
          })
          return Effect.as(
            Effect.logError(`${what}: GitHub will not accept this (${error.message}); parked, next try in an hour`),
            undefined
          )
        }
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (count - 1))
        const retryAt = options.now() + delay
        options.memory.failures.set(key, { retryAt, count, parked: false })
        return Effect.logWarning(
          `${what}: ${error.message}; trying again in ${Math.round(delay / 1000)}s (attempt ${count})`
        ).pipe(
          Effect.as(retryAt)
        )
      })
    )
  })

/** Whether a commit's run has ended on GitHub: its check run completed; in token mode, nothing is left to send. */
const runEnded = (options: GitHubPassOptions, target: CommitTarget, view: CheckView): boolean =>
  options.github.mode === "app" ? target.record.doc.reported?.status === "completed" : view.status === "completed"

/** Deletes the record unless it changed since the snapshot (a webhook that just touched it wins). */
const pruneRecord = (options: GitHubPassOptions, target: CommitTarget) =>
  Effect.gen(function*() {
    const key = options.keys.github(target.app, target.sha)
    const result = yield* (yield* Consul).txn([{ verb: "delete-cas", key, index: target.record.modifyIndex }])
    if (result.ok) {
      yield* Effect.logInfo(
        `pruned ${key}: no release came, its check run ended, and nothing happened for ${
          formatDuration(options.pruning.recordTtlMs)
        }`
      )
    }
  }).pipe(Effect.catch((e) => Effect.logWarning(`record not pruned: ${e.message}`)))

/**
 * Forgets what this term remembers about `app` that no longer exists in it (commits
 * whose record and release went, older deploy generations), so the memory follows
 * apps × commits kept, not the history.
 */
const forgetGone = (memory: ReporterMemory, name: string, app: AppSnapshot | undefined) => {
  const shas = new Set([...(app?.github.keys() ?? []), ...(app?.releases.keys() ?? [])])
  const generations = new Set<number>()
  if (app?.deploy !== undefined) generations.add(app.deploy.generation)
  for (const { doc } of app?.github.values() ?? []) {
    if (doc.deployment !== undefined) generations.add(doc.deployment.generation)
  }
  const prefix = `${name}/`
  for (const key of memory.sent.keys()) {
    if (key.startsWith(prefix) && !shas.has(key.slice(prefix.length))) memory.sent.delete(key)
  }
  for (const key of memory.failures.keys()) {
    const [kind, keyApp, rest] = key.split("/")
    if (keyApp !== name) continue
    if (kind === "deployment" ? app === undefined : !shas.has(rest ?? "")) memory.failures.delete(key)
  }
  for (const key of memory.firstSeen.keys()) {
    const parts = key.split("/")
    if (parts[0] === "deploy" && parts[1] === name) {
      if (!generations.has(Number(parts[2]))) memory.firstSeen.delete(key)
    } else if (parts[0] === name && app?.releases.get(parts[1] ?? "")?.modifyIndex !== Number(parts[2])) {
      memory.firstSeen.delete(key)
    }
  }
  for (const key of memory.deployments.keys()) {
    if (key.startsWith(prefix) && !generations.has(Number(key.slice(prefix.length)))) memory.deployments.delete(key)
  }
}

/** One pass over one app of a snapshot; returns the earliest time it needs another look. */
export const githubPass = (
  options: GitHubPassOptions,
  snapshot: Snapshot,
  name: string
): Effect.Effect<number | undefined, never, Consul> =>
  Effect.gen(function*() {
    const { memory } = options
    const app = snapshot.apps.get(name)
    forgetGone(memory, name, app)
    if (app === undefined) return undefined
    options.metrics?.inc("sacar_report_renders_total", { app: name })
    const now = options.now()
    const firstSeen = (key: string) => {
      const at = memory.firstSeen.get(key) ?? now
      memory.firstSeen.set(key, at)
      return at
    }
    const targets = commitTargets(
      app,
      snapshot.nodes,
      now,
      options.publicUrl,
      firstSeen,
      options.pruning.artifactWaitMs
    )
      .map((target) => ({ target, view: render(target.input) }))
    const wakes: Array<number | undefined> = []
    const checks = yield* Effect.forEach(
      targets,
      ({ target, view }) => {
        // A release still preparing turns timed_out at its deadline, a commit waiting
        // for its artifact stops waiting at its own: look again then.
        if (view.status !== "completed") {
          wakes.push(
            target.input.hasRelease
              ? prepareDeadline(target.input, durationMillis(target.config.prepareTimeout))
              : artifactDeadline(target.input)
          )
        }
        const what = `${checkRunName(target.app)} on ${shortSha(target.sha)}`
        if (options.github.mode === "app")
          return guarded(options, `check/${target.app}/${target.sha}`, what, reportCheckRun(options, target, view))
        const status = toCommitStatus(view)
        return status === undefined
          ? Effect.succeed(undefined)
          : guarded(
            options,
            `status/${target.app}/${target.sha}`,
            `commit status ${what}`,
            reportCommitStatus(options, target, status)
          )
      },
      { concurrency: 4 }
    )
    const deployment = yield* guarded(
      options,
      `deployment/${name}`,
      `deployment of ${name}`,
      mirrorDeployment(options, snapshot, name)
    )
    for (const { target, view } of targets) {
      const expiry = recordExpiry(target, runEnded(options, target, view), options.pruning.recordTtlMs)
      if (expiry === undefined) continue
      if (expiry <= now) yield* pruneRecord(options, target)
      else wakes.push(expiry)
    }
    const future = [...wakes, ...checks, deployment].filter((t): t is number => t !== undefined && t > now - 1)
    return future.length === 0 ? undefined : Math.min(...future)
  })
