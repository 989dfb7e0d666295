/**
 * One GitHub pass: bring every check run (or commit status) and every Deployment in
 * line with a Snapshot. What to send is decided by github-decide.ts, without I/O;
 * this module sends it, records it, and keeps what one leader term remembers. Each
 * commit is handled on its own, so one failing call only delays that commit: it is
 * tried again after a backoff, from whatever KV says then.
 *
 * What was reported lives in the GitHubRecord (`reported`, `checkRunId`,
 * `deployment`), so a new leader continues where the old one stopped; this replica's
 * memory of its own recent sends covers the moment before its record writes come
 * back through the watch. Time is read through Clock.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { Consul } from "../../consul/consul.ts"
import type { GitHubError } from "../../github/errors.ts"
import type { GitHubShape } from "../../github/github.ts"
import { durationMillis, formatDuration } from "../../spec/duration.ts"
import type { Keys } from "../../spec/keys.ts"
import { shortSha } from "../../spec/names.ts"
import { readRecord, updateRecord } from "../../state/github-records.ts"
import type { Metrics } from "../metrics.ts"
import {
  afterFailure,
  backingOff,
  decideCheckRun,
  decideCommitStatus,
  decideDeployment,
  isMirrorOf,
  lastReported,
  nextLook
} from "./github-decide.ts"
import type { Failing, Sent } from "./github-decide.ts"
import { recordExpiry } from "./pruning.ts"
import type { PruningSettings } from "./pruning.ts"
import type { DeployState } from "./release-view.ts"
import { artifactDeadline, checkRunName, prepareDeadline, render, toCommitStatus } from "./render.ts"
import type { CheckView, CommitStatusView } from "./render.ts"
import type { AppSnapshot, Snapshot } from "./snapshot.ts"
import { appFacts, commitTargets } from "./targets.ts"
import type { CommitTarget } from "./targets.ts"

/** What one leader term remembers between passes (lost with the term, rebuilt from KV). */
export interface ReporterMemory {
  readonly sent: Map<string, Sent>
  readonly failures: Map<string, Failing>
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

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * Sends the check run of one commit if it changed. Returns when to look again (a
 * coalescing window), or undefined.
 */
const reportCheckRun = (options: GitHubPassOptions, target: CommitTarget, view: CheckView) =>
  Effect.gen(function*() {
    const { memory, github, keys } = options
    const id = `${target.app}/${target.sha}`
    const decision = decideCheckRun({
      view,
      last: lastReported(memory.sent.get(id), target.record.doc),
      recordedId: target.record.doc.checkRunId,
      startedAt: target.input.startedAt,
      failedNodes: target.input.release.failed.length,
      coalesceMs: options.coalesceMs,
      now: yield* Clock.currentTimeMillis
    })
    if (decision._tag === "Unchanged") return undefined
    if (decision._tag === "Wait") return decision.until

    const { digest, phase } = decision
    const name = checkRunName(target.app)
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
    const sent = (runId: number) =>
      Effect.gen(function*() {
        const at = yield* Clock.currentTimeMillis
        memory.sent.set(id, { digest, at, status: view.status, checkRunId: runId, phase })
        yield* recordReported(options, target, runId, digest, at, view)
      })

    let runId = decision._tag === "Update" ? decision.checkRunId : undefined
    if (decision._tag === "Open") {
      // The snapshot may predate our own write of checkRunId: ask Consul before creating.
      const fresh = yield* readRecord(keys, target.app, target.sha)
      if (fresh === undefined) return undefined
      if (!decision.reopen && fresh.checkRunId !== undefined) {
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
            name,
            headSha: target.sha,
            externalId: id,
            exclude: decision.reopen ? decision.previousId : undefined
          })
        )
        if (existing !== undefined) {
          // Adopted: the update below brings it up to date and records its id.
          yield* Effect.logInfo(`check run ${name} on ${shortSha(target.sha)} found; adopted`)
          runId = existing.id
        }
      }
      if (runId === undefined) {
        const created = yield* counted(
          options,
          "createCheckRun",
          201,
          github.createCheckRun({ ...where, ...body, name, headSha: target.sha, externalId: id })
        )
        yield* sent(created.id)
        yield* Effect.logInfo(`check run ${name} created on ${shortSha(target.sha)}: ${view.title}`)
        return undefined
      }
    }
    if (runId === undefined) return undefined
    const checkRunId = runId
    yield* counted(options, "updateCheckRun", 200, github.updateCheckRun({ ...where, ...body, checkRunId }))
    yield* sent(checkRunId)
    yield* Effect.logDebug(`check run ${name} on ${shortSha(target.sha)}: ${view.title}`)
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
    const last = lastReported(memory.sent.get(id), target.record.doc)
    const decision = decideCommitStatus(status, last, options.coalesceMs, yield* Clock.currentTimeMillis)
    if (decision._tag === "Unchanged") return undefined
    if (decision._tag === "Wait") return decision.until
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
    const at = yield* Clock.currentTimeMillis
    memory.sent.set(id, { digest: decision.digest, at, status: status.state, checkRunId: undefined })
    yield* recordReported(options, target, undefined, decision.digest, at, { status: status.state })
    return undefined
  })

/**
 * Mirrors the app's current deploy generation to a GitHub Deployment (decideDeployment
 * says what to send), and retires older generations left in progress.
 */
const mirrorDeployment = (options: GitHubPassOptions, snapshot: Snapshot, appName: string) =>
  Effect.gen(function*() {
    const app = snapshot.apps.get(appName)
    const config = app?.config
    if (app === undefined || config?.repo === undefined) return undefined
    const deploy = appFacts(app, config, snapshot.nodes).deploy
    if (deploy === undefined) return undefined
    const { keys, github, memory } = options
    const now = yield* Clock.currentTimeMillis
    const record = app.github.get(deploy.sha)?.doc
    const repo = record?.repo ?? config.repo
    const where = { ...splitRepo(repo), installationId: record?.installationId }
    const memoryKey = `${appName}/${deploy.generation}`
    const seenKey = `deploy/${appName}/${deploy.generation}`
    const records = [...app.github.values()].map(({ doc }) => ({
      sha: doc.sha,
      repo: doc.repo,
      installationId: doc.installationId,
      deployment: doc.deployment
    }))
    const retired = new Set(
      records.flatMap(({ deployment: d }) =>
        d !== undefined && memory.deployments.get(`${appName}/${d.generation}`)?.state === "inactive"
          ? [d.generation]
          : []
      )
    )
    const decision = decideDeployment({
      app: appName,
      deploy,
      // The snapshot may not show our own last write yet; what this term sent is newer.
      mirrored: memory.deployments.get(memoryKey) ??
        (record?.deployment?.generation === deploy.generation ? record.deployment : undefined),
      firstSeen: memory.firstSeen.get(seenKey) ?? now,
      records,
      retired,
      now
    })
    if (decision.firstSeen !== undefined) memory.firstSeen.set(seenKey, decision.firstSeen)

    let deploymentId = memory.deployments.get(memoryKey)?.id ??
      (record?.deployment?.generation === deploy.generation ? record.deployment.id : undefined)
    for (const op of decision.ops) {
      switch (op._tag) {
        case "Retire": {
          yield* counted(
            options,
            "createDeploymentStatus",
            201,
            github.createDeploymentStatus({
              ...splitRepo(op.repo),
              installationId: op.installationId,
              deploymentId: op.deploymentId,
              state: "inactive",
              description: op.description,
              environment: config.environment
            })
          )
          memory.deployments.set(`${appName}/${op.generation}`, { id: op.deploymentId, state: "inactive" })
          yield* updateRecord(
            keys,
            appName,
            op.sha,
            (r) =>
              r?.deployment?.generation === op.generation
                ? { ...r, deployment: { ...r.deployment, state: "inactive" } }
                : undefined
          )
          break
        }
        case "Wait":
          return op.until
        case "Create": {
          const fresh = yield* readRecord(keys, appName, deploy.sha)
          if (fresh?.deployment?.generation === deploy.generation && fresh.deployment.id !== undefined)
            return undefined
          // A Deployment an earlier create made (its answer lost, or its leader gone) is adopted.
          const existing = yield* counted(
            options,
            "findDeployment",
            200,
            github.findDeployment({
              ...where,
              sha: deploy.sha,
              environment: config.environment,
              matches: (payload) => isMirrorOf(payload, appName, deploy.generation)
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
              description: op.description,
              payload: op.payload
            })
          ))
          deploymentId = created.id
          memory.deployments.set(memoryKey, { id: created.id, state: undefined })
          yield* Effect.logInfo(
            `deployment ${created.id} ${existing === undefined ? "created" : "found and adopted"} for ${appName} ${
              shortSha(deploy.sha)
            } (generation ${deploy.generation})`
          )
          const saved = { generation: deploy.generation, id: created.id }
          const createdAt = iso(yield* Clock.currentTimeMillis)
          yield* updateRecord(keys, appName, deploy.sha, (current) => ({
            ...(current ?? { repo, sha: deploy.sha, createdAt }),
            deployment: saved
          }))
          break
        }
        case "SetState": {
          if (deploymentId === undefined) return undefined
          const id = deploymentId
          yield* counted(
            options,
            "createDeploymentStatus",
            201,
            github.createDeploymentStatus({
              ...where,
              deploymentId: id,
              state: op.state,
              description: op.description,
              environment: config.environment,
              logUrl: options.publicUrl ? `${options.publicUrl}/v1/apps/${appName}` : undefined
            })
          )
          memory.deployments.set(memoryKey, { id, state: op.state })
          yield* Effect.logInfo(`deployment ${id} of ${appName}: ${op.state} (${deploy.description})`)
          yield* updateRecord(keys, appName, deploy.sha, (current) =>
            current === undefined
              ? undefined
              : { ...current, deployment: { generation: deploy.generation, id, state: op.state } })
          break
        }
      }
    }
    return undefined
  })

const isPermanent = (error: Failure): error is GitHubError =>
  error._tag === "GitHubError" && (error as GitHubError).retryable === false

/**
 * Runs `work` for one key unless it is backing off; failures schedule the next try
 * (afterFailure). An error GitHub will never accept is parked instead: logged once,
 * counted in sacar_github_parked_total{operation,status}, and tried again only after
 * an hour, not every minute forever.
 */
const guarded = (
  options: GitHubPassOptions,
  key: string,
  what: string,
  work: Effect.Effect<number | undefined, Failure, Consul>
): Effect.Effect<number | undefined, never, Consul> =>
  Effect.gen(function*() {
    const failing = options.memory.failures.get(key)
    const waiting = backingOff(failing, yield* Clock.currentTimeMillis)
    if (waiting !== undefined) return waiting.wake
    return yield* work.pipe(
      Effect.tap(() => Effect.sync(() => options.memory.failures.delete(key))),
      Effect.catch((error: Failure) =>
        Effect.gen(function*() {
          const after = afterFailure(failing, isPermanent(error), yield* Clock.currentTimeMillis)
          options.memory.failures.set(key, after.failing)
          if (after.report === "parked" && isPermanent(error)) {
            options.metrics?.inc("sacar_github_parked_total", {
              operation: error.operation,
              status: String(error.status)
            })
            yield* Effect.logError(
              `${what}: GitHub will not accept this (${error.message}); parked, next try in an hour`
            )
          } else if (after.report === "retry") {
            yield* Effect.logWarning(
              `${what}: ${error.message}; trying again in ${
                Math.round(after.delayMs / 1000)
              }s (attempt ${after.failing.count})`
            )
          }
          return after.wake
        })
      )
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
    const now = yield* Clock.currentTimeMillis
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
    return nextLook([...wakes, ...checks, deployment], now)
  })
