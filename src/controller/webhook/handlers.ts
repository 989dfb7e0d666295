/**
 * What each GitHub event means for Consul. Handlers only write desired state and the
 * per-commit GitHubRecord; the leader's report loop does everything GitHub-facing
 * from there. Every handler is safe to run twice for one delivery (GitHub redelivers
 * with the same X-GitHub-Delivery, and any replica may take it): writes that would
 * act again (a deploy, a rewritten release) carry the delivery's mark (deliveries.ts)
 * in their transaction, and the rest are idempotent.
 *
 * What is a deploy order (docs/github.md): a click on a check run's Deploy button,
 * and, only for an app with `githubDeployments: true`, a Deployment a person created
 * in the app's environment with task `deploy`. What builds a release: a successful
 * run of the `buildWorkflow` file, triggered by a push to the repository itself.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { basename } from "node:path"
import { nowIso } from "../../common/time.ts"
import type { Consul } from "../../consul/consul.ts"
import type { ConsulError } from "../../consul/consul.ts"
import { explain } from "../../spec/decode.ts"
import type { AppConfig, ReleaseSpec } from "../../spec/documents.ts"
import type { Keys } from "../../spec/keys.ts"
import { isSha, shortSha } from "../../spec/names.ts"
import type { WriteConflict } from "../../state/cas.ts"
import { type CommitSeen, readRecord, recordCommit } from "../../state/github-records.ts"
import type { DeployNotWritten } from "../../state/writes.ts"
import { createRelease, readRelease, releaseFromTemplate, requestDeploy, retryRelease } from "../../state/writes.ts"
import { appsForRepo, type KnownApp } from "../apps.ts"
import { deliveryGuard } from "./deliveries.ts"
import { CheckRunPayload, CheckSuitePayload, DeploymentPayload, PushPayload, WorkflowRunPayload } from "./payloads.ts"

export interface WebhookContext {
  readonly keys: Keys
  /** GITHUB_APP_ID: Deployments this App created are its own mirror, not requests. */
  readonly githubAppId: string | undefined
}

/** Which delivery a handler is answering (X-GitHub-Event, X-GitHub-Delivery). */
export interface Delivery {
  readonly event: string
  readonly id: string | undefined
}

/**
 * The answer to a delivery: `handled` (200), `ignored` (202), `refused` (200, a lock
 * said no) or `repeat` (200: this delivery already acted, nothing was done again).
 */
export interface WebhookOutcome {
  readonly result: "handled" | "ignored" | "refused" | "repeat"
  readonly reason?: string
  /** What happened per app, in words, e.g. `{"shop": "release 1a2b3c4 created"}`. */
  readonly apps: Readonly<Record<string, string>>
}

/** A signed, JSON body that is not the event it claims to be (400). */
export class PayloadError extends Data.TaggedError("PayloadError")<{ readonly message: string }> {}

type HandlerError = PayloadError | ConsulError | WriteConflict | DeployNotWritten
type Handler = (
  ctx: WebhookContext,
  body: unknown,
  delivery: Delivery
) => Effect.Effect<WebhookOutcome, HandlerError, Consul>

const guardOf = (ctx: WebhookContext, delivery: Delivery, app: string) =>
  Effect.map(Clock.currentTimeMillis, (ms) => deliveryGuard(ctx.keys, delivery.id, delivery.event, app, new Date(ms)))

const REPEAT = "this delivery already acted; a redelivery does nothing again"

const ignored = (reason: string): WebhookOutcome => ({ result: "ignored", reason, apps: {} })

const decode = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  event: string,
  body: unknown
) => {
  const decoded = Schema.decodeUnknownResult(schema)(body, { errors: "all" })
  return Result.isSuccess(decoded)
    ? Effect.succeed(decoded.success as S["Type"])
    : Effect.fail(new PayloadError({ message: explain(`${event} payload`, decoded.failure, body) }))
}

const checkSha = (sha: string, field: string) =>
  isSha(sha)
    ? Effect.void
    : Effect.fail(new PayloadError({ message: `${field} is not a 40-hex commit sha: ${JSON.stringify(sha)}` }))

const actionOf = (body: unknown): string | undefined =>
  body !== null && typeof body === "object" && typeof (body as { action?: unknown }).action === "string"
    ? (body as { action: string }).action
    : undefined

const repoApps = (ctx: WebhookContext, fullName: string) => appsForRepo(ctx.keys, fullName)

const noApp = (fullName: string) => ignored(`no app has repo ${fullName} in its AppConfig`)

const branchRef = (branch: string | null | undefined) => (branch ? `refs/heads/${branch}` : undefined)

const outcomeOf = (apps: Record<string, string>, none: string): WebhookOutcome =>
  Object.keys(apps).length === 0 ? ignored(none) : { result: "handled", apps }

/** push to an app's branch: remember the commit; the leader opens its check run. */
const push: Handler = (ctx, body) =>
  Effect.gen(function*() {
    const p = yield* decode(PushPayload, "push", body)
    if (p.deleted === true || /^0+$/.test(p.after)) return ignored("branch or tag deleted")
    if (!p.ref.startsWith("refs/heads/")) return ignored(`${p.ref} is not a branch`)
    yield* checkSha(p.after, "after")
    const branch = p.ref.slice("refs/heads/".length)
    const apps = yield* repoApps(ctx, p.repository.full_name)
    if (apps.length === 0) return noApp(p.repository.full_name)
    const seen: CommitSeen = {
      repo: p.repository.full_name,
      sha: p.after,
      ref: p.ref,
      branch,
      installationId: p.installation?.id,
      onDeployBranch: true
    }
    const done: Record<string, string> = {}
    for (const app of apps.filter((a) => a.config.branch === branch)) {
      yield* recordCommit(ctx.keys, app.name, seen)
      done[app.name] = `commit ${shortSha(p.after)} recorded`
    }
    return outcomeOf(done, `no app of ${p.repository.full_name} deploys branch ${branch}`)
  })

/**
 * check_suite requested/rerequested: the commit gets a check run, on any branch.
 * "Re-run all checks" (rerequested) also retries the commit's release, as the check
 * run's own re-run does.
 */
const checkSuite: Handler = (ctx, body, delivery) =>
  Effect.gen(function*() {
    const action = actionOf(body)
    if (action !== "requested" && action !== "rerequested")
      return ignored(`check_suite ${action ?? "(no action)"} needs nothing`)
    const p = yield* decode(CheckSuitePayload, "check_suite", body)
    yield* checkSha(p.check_suite.head_sha, "check_suite.head_sha")
    const apps = yield* repoApps(ctx, p.repository.full_name)
    if (apps.length === 0)
      return noApp(p.repository.full_name)
    const branch = p.check_suite.head_branch ?? null
    const seen: CommitSeen = {
      repo: p.repository.full_name,
      sha: p.check_suite.head_sha,
      ref: branchRef(branch),
      branch,
      installationId: p.installation?.id
    }
    const done: Record<string, string> = {}
    for (const app of apps) {
      yield* recordCommit(ctx.keys, app.name, seen)
      done[app.name] = `commit ${shortSha(seen.sha)} recorded${
        branch === app.config.branch ? "" : ` (branch ${branch ?? "unknown"}: Prepare on request)`
      }`
      if (action !== "rerequested") continue
      const by = p.sender?.login ?? "github"
      const release = yield* readRelease(ctx.keys, app.name, seen.sha)
      if (release === undefined) continue
      const retried = yield* retryRelease(
        ctx.keys,
        app.name,
        seen.sha,
        release,
        by,
        yield* guardOf(ctx, delivery, app.name)
      )
      done[app.name] = retried === "repeat" ? REPEAT : `release ${shortSha(seen.sha)} retried for ${by}`
    }
    return { result: "handled", apps: done }
  })

/**
 * A workflow is named by its file: `.github/workflows/build.yml`, `build.yml` or
 * `build`. Never by a run's display name, which a pull request can set to anything.
 */
export const workflowMatches = (wanted: string, path: string | null | undefined): boolean => {
  if (path === null || path === undefined || path === "") return false
  const file = basename(path)
  return path === wanted || file === wanted || file.replace(/\.ya?ml$/, "") === wanted
}

/** Why a successful run does not build a release of `repo`, or undefined when it does. */
export const notABuild = (repo: string, run: WorkflowRunPayload["workflow_run"]): string | undefined => {
  if (run.event !== "push") return `the run was triggered by ${run.event ?? "an unknown event"}, not a push`
  const head = run.head_repository?.full_name
  if (head === undefined || head.toLowerCase() !== repo.toLowerCase())
    return `the run's commit comes from ${head ?? "an unknown repository"}, not ${repo}`
  return undefined
}

/** workflow_run completed successfully on the app's branch: the artifact exists, so the release does. */
const workflowRun: Handler = (ctx, body) =>
  Effect.gen(function*() {
    const action = actionOf(body)
    if (action !== "completed") return ignored(`workflow_run ${action ?? "(no action)"} needs nothing`)
    const p = yield* decode(WorkflowRunPayload, "workflow_run", body)
    const run = p.workflow_run
    if (run.conclusion !== "success")
      return ignored(`workflow run concluded ${run.conclusion ?? "without a conclusion"}`)
    yield* checkSha(run.head_sha, "workflow_run.head_sha")
    const foreign = notABuild(p.repository.full_name, run)
    if (foreign !== undefined) return ignored(foreign)
    const apps = yield* repoApps(ctx, p.repository.full_name)
    if (apps.length === 0)
      return noApp(p.repository.full_name)
    const path = run.path ?? p.workflow?.path
    const branch = run.head_branch ?? null
    const done: Record<string, string> = {}
    for (const app of apps) {
      const wanted = app.config.buildWorkflow
      if (wanted === undefined || app.config.branch !== branch || !workflowMatches(wanted, path)) continue
      const spec = releaseFromTemplate(app.name, app.config, run.head_sha, {
        at: yield* nowIso,
        ref: branchRef(branch),
        source: "github"
      })
      if (Result.isFailure(spec)) {
        yield* Effect.logWarning(spec.failure.message, { app: app.name, sha: run.head_sha })
        done[app.name] = `not released: ${spec.failure.message}`
        continue
      }
      yield* recordCommit(ctx.keys, app.name, {
        repo: p.repository.full_name,
        sha: run.head_sha,
        ref: branchRef(branch),
        branch,
        installationId: p.installation?.id
      })
      const created = yield* createRelease(ctx.keys, app.name, run.head_sha, spec.success)
      done[app.name] = created === "created"
        ? `release ${shortSha(run.head_sha)} created`
        : `release ${shortSha(run.head_sha)} already there`
    }
    return outcomeOf(
      done,
      `no app of ${p.repository.full_name} builds with this workflow on branch ${branch ?? "(none)"}`
    )
  })

/** The check run's app: its name is `sacar/<app>` (docs/contract.md §5). */
const appOfCheckRun = (
  apps: ReadonlyArray<KnownApp>,
  name: string,
  externalId: string | null | undefined
): KnownApp | undefined => apps.find((a) => name === `sacar/${a.name}`) ?? apps.find((a) => externalId === a.name)

/**
 * The release a click asks for: the existing one written again (so failed nodes
 * retry), or a new one from the template. An app without a template still gets the
 * release, so its failure ("no artifact ...") shows in the check run rather than the
 * click doing nothing.
 */
const freshRelease = (
  app: string,
  config: AppConfig,
  sha: string,
  ref: string | undefined,
  requestedBy: string,
  at: string
): ReleaseSpec => {
  const spec = releaseFromTemplate(app, config, sha, { at, ref, source: "github", requestedBy })
  return Result.isSuccess(spec)
    ? spec.success
    : { ...(ref !== undefined ? { ref } : {}), createdAt: at, source: "github", requestedBy }
}

/** check_run requested_action (prepare, deploy) and rerequested (retry the release). */
const checkRun: Handler = (ctx, body, delivery) =>
  Effect.gen(function*() {
    const action = actionOf(body)
    if (action !== "requested_action" && action !== "rerequested")
      return ignored(`check_run ${action ?? "(no action)"} needs nothing`)
    const p = yield* decode(CheckRunPayload, "check_run", body)
    const run = p.check_run
    yield* checkSha(run.head_sha, "check_run.head_sha")
    const apps = yield* repoApps(ctx, p.repository.full_name)
    if (apps.length === 0)
      return noApp(p.repository.full_name)
    const app = appOfCheckRun(apps, run.name, run.external_id)
    if (app === undefined) return ignored(`check run ${JSON.stringify(run.name)} is not one of Sacar's`)
    const by = p.sender?.login ?? "github"
    const branch = run.check_suite?.head_branch ?? null
    const seen: CommitSeen = {
      repo: p.repository.full_name,
      sha: run.head_sha,
      ref: branchRef(branch),
      branch,
      installationId: p.installation?.id
    }
    const short = shortSha(run.head_sha)
    const identifier = action === "rerequested" ? "rerequested" : p.requested_action?.identifier
    if (identifier === "prepare" || identifier === "rerequested") {
      yield* recordCommit(ctx.keys, app.name, seen)
      const written = yield* retryRelease(
        ctx.keys,
        app.name,
        run.head_sha,
        freshRelease(app.name, app.config, run.head_sha, seen.ref, by, yield* nowIso),
        by,
        yield* guardOf(ctx, delivery, app.name)
      )
      return written === "repeat"
        ? { result: "repeat", apps: { [app.name]: REPEAT } }
        : { result: "handled", apps: { [app.name]: `release ${short} written for ${by}` } }
    }
    if (identifier === "deploy") {
      const outcome = yield* requestDeploy(ctx.keys, app.name, {
        sha: seen.sha,
        requestedBy: by,
        commit: seen,
        delivery: yield* guardOf(ctx, delivery, app.name)
      })
      if (outcome.kind === "repeat") return { result: "repeat", apps: { [app.name]: REPEAT } }
      return outcome.kind === "refused"
        ? {
          result: "refused",
          reason: outcome.reason,
          apps: { [app.name]: `deploy of ${short} refused: ${outcome.reason}` }
        }
        : {
          result: "handled",
          apps: { [app.name]: `deploy of ${short} requested by ${by} (generation ${outcome.generation})` }
        }
    }
    return ignored(`check run action ${JSON.stringify(identifier ?? "")} is not one of Sacar's (prepare, deploy)`)
  })

/**
 * A Deployment the leader created to mirror a deploy comes back as a `deployment`
 * webhook; acting on it would deploy again, forever. The leader's Deployments are
 * recognised by the App that made them (App mode) and by the `sacar` key of their
 * payload; the commit's record (deployment id) catches the rest, per app.
 */
export const isOwnDeployment = (githubAppId: string | undefined, d: DeploymentPayload["deployment"]): boolean => {
  const via = d.performed_via_github_app?.id
  if (githubAppId !== undefined && via !== undefined && String(via) === githubAppId) return true
  let payload = d.payload
  if (typeof payload === "string") {
    try {
      payload = JSON.parse(payload)
    } catch {
      return false
    }
  }
  if (payload === null || typeof payload !== "object") return false
  const p = payload as Record<string, unknown>
  return "sacar" in p
}

/**
 * Why a Deployment is not a deploy order, or undefined when it is one (for an app
 * with `githubDeployments: true`). A workflow job with `environment: production`
 * makes GitHub create a Deployment for the job (the delivery then carries
 * `workflow_run`, and the creator is a bot); another GitHub App's Deployments are that
 * App's business; only the task `deploy` asks for a deploy.
 */
export const notADeployOrder = (githubAppId: string | undefined, p: DeploymentPayload): string | undefined => {
  const d = p.deployment
  if (isOwnDeployment(githubAppId, d)) return "a Deployment Sacar created to mirror a deploy"
  if (p.workflow_run !== undefined && p.workflow_run !== null)
    return "a Deployment created by a workflow run (a job's environment), not a deploy order"
  if (d.performed_via_github_app !== undefined && d.performed_via_github_app !== null)
    return `a Deployment created by GitHub App ${d.performed_via_github_app.id}, not by a person`
  if (d.creator?.type === "Bot") return `a Deployment created by the bot ${d.creator.login}, not by a person`
  if ((d.task ?? "deploy") !== "deploy") return `a Deployment with task ${JSON.stringify(d.task)}, not "deploy"`
  return undefined
}

/**
 * deployment created for the app's environment: a person asked GitHub to deploy. Only
 * apps with `githubDeployments: true` take it as a deploy order.
 */
const deployment: Handler = (ctx, body, delivery) =>
  Effect.gen(function*() {
    const action = actionOf(body)
    if (action !== "created") return ignored(`deployment ${action ?? "(no action)"} needs nothing`)
    const p = yield* decode(DeploymentPayload, "deployment", body)
    const d = p.deployment
    yield* checkSha(d.sha, "deployment.sha")
    const why = notADeployOrder(ctx.githubAppId, p)
    if (why !== undefined) return ignored(why)
    const apps = yield* repoApps(ctx, p.repository.full_name)
    if (apps.length === 0) return noApp(p.repository.full_name)
    const by = d.creator?.login ?? p.sender?.login ?? "github"
    const seen: CommitSeen = {
      repo: p.repository.full_name,
      sha: d.sha,
      ref: d.ref ?? undefined,
      installationId: p.installation?.id
    }
    const done: Record<string, string> = {}
    const refusals: string[] = []
    for (const app of apps.filter((a) => a.config.environment === d.environment && a.config.githubDeployments)) {
      const record = yield* readRecord(ctx.keys, app.name, d.sha)
      if (record?.deployment?.id === d.id) continue
      const outcome = yield* requestDeploy(ctx.keys, app.name, {
        sha: seen.sha,
        requestedBy: by,
        commit: seen,
        deploymentId: d.id,
        delivery: yield* guardOf(ctx, delivery, app.name)
      })
      if (outcome.kind === "repeat") continue
      if (outcome.kind === "refused") {
        refusals.push(outcome.reason)
        done[app.name] = `deploy of ${shortSha(d.sha)} refused: ${outcome.reason}`
      } else {
        done[app.name] = `deploy of ${shortSha(d.sha)} requested by ${by} (generation ${outcome.generation})`
      }
    }
    const count = Object.keys(done).length
    if (count === 0)
      return ignored(
        `no app of ${p.repository.full_name} takes GitHub Deployments to environment ${d.environment} (githubDeployments), or Sacar already follows this Deployment`
      )
    return refusals.length === count
      ? { result: "refused", reason: refusals.join("; "), apps: done }
      : { result: "handled", apps: done }
  })

const ping: Handler = () => Effect.succeed({ result: "handled", reason: "pong", apps: {} })

/** By X-GitHub-Event, which is not signed: a Map, so `constructor` or `__proto__` find nothing. */
export const HANDLERS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ["push", push],
  ["check_suite", checkSuite],
  ["check_run", checkRun],
  ["workflow_run", workflowRun],
  ["deployment", deployment],
  ["ping", ping]
])
