import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { githubRetry } from "../common/retry.ts"
import type { GitHubConfig, GitHubTuning } from "./config.ts"
import { defaultTuning, githubConfigFromEnv } from "./config.ts"
import { GitHubConfigError, GitHubError, isTransientGitHubError } from "./errors.ts"
import type { CheckRunAction } from "./limits.ts"
import { checkActions, sanitizeTitle, STATUS_DESCRIPTION_MAX, truncateBytes, truncateChars } from "./limits.ts"
import type { ClientShared, OctokitLog, SacarOctokit } from "./octokit.ts"
import { appClient, makeClientShared, tokenClient } from "./octokit.ts"

export type { CheckRunAction } from "./limits.ts"

export type GitHubMode = "app" | "token"
export type CheckRunStatus = "queued" | "in_progress" | "completed"
/** `stale` is left out: only GitHub may set it. */
export type CheckRunConclusion =
  | "action_required"
  | "cancelled"
  | "failure"
  | "neutral"
  | "success"
  | "skipped"
  | "timed_out"
export type DeploymentState = "error" | "failure" | "inactive" | "in_progress" | "queued" | "pending" | "success"
export type CommitState = "error" | "failure" | "pending" | "success"

/** Where a call goes. `installationId` (App mode) comes from the webhook when known. */
export interface RepoTarget {
  readonly owner: string
  readonly repo: string
  readonly installationId?: number | undefined
}

/** What a check run shows, on create and on update. */
interface CheckRunContent {
  readonly status: CheckRunStatus
  /** Required when status is "completed". */
  readonly conclusion?: CheckRunConclusion | undefined
  readonly title: string
  readonly summary: string
  readonly text?: string | undefined
  readonly detailsUrl?: string | undefined
  /** On update, omitted: the run keeps its buttons; []: they are removed. */
  readonly actions?: ReadonlyArray<CheckRunAction> | undefined
}

export interface CreateCheckRunInput extends RepoTarget, CheckRunContent {
  readonly name: string
  readonly headSha: string
  readonly externalId?: string | undefined
}

export interface UpdateCheckRunInput extends RepoTarget, CheckRunContent {
  readonly checkRunId: number
}

export interface CreateDeploymentInput extends RepoTarget {
  /** The commit sha to deploy. */
  readonly ref: string
  readonly environment: string
  readonly description: string
  readonly payload: Readonly<Record<string, unknown>>
}

export interface CreateDeploymentStatusInput extends RepoTarget {
  readonly deploymentId: number
  readonly state: DeploymentState
  readonly description: string
  readonly logUrl?: string | undefined
  readonly environment: string
}

export interface CreateCommitStatusInput extends RepoTarget {
  readonly sha: string
  readonly state: CommitState
  readonly context: string
  readonly description: string
  readonly targetUrl?: string | undefined
}

export interface FindCheckRunInput extends RepoTarget {
  readonly headSha: string
  readonly name: string
  readonly externalId: string
  /** A run that does not count (the completed run a retried release replaces). */
  readonly exclude?: number | undefined
}

export interface FindDeploymentInput extends RepoTarget {
  readonly sha: string
  readonly environment: string
  /** The Deployment sought: its payload as GitHub returns it. */
  readonly matches: (payload: unknown) => boolean
}

export interface GitHubShape {
  /** "app": check runs with buttons; "token": commit statuses only (check calls fail with 403). */
  readonly mode: GitHubMode
  readonly createCheckRun: (input: CreateCheckRunInput) => Effect.Effect<{ readonly id: number }, GitHubError>
  readonly updateCheckRun: (input: UpdateCheckRunInput) => Effect.Effect<void, GitHubError>
  readonly createDeployment: (input: CreateDeploymentInput) => Effect.Effect<{ readonly id: number }, GitHubError>
  readonly createDeploymentStatus: (input: CreateDeploymentStatusInput) => Effect.Effect<void, GitHubError>
  readonly createCommitStatus: (input: CreateCommitStatusInput) => Effect.Effect<void, GitHubError>
  /**
   * The check run an earlier create may already have made (a create whose answer was
   * lost, a leader that died before recording it): by name and `external_id`.
   */
  readonly findCheckRun: (input: FindCheckRunInput) => Effect.Effect<{ readonly id: number } | undefined, GitHubError>
  /** The Deployment an earlier create may already have made, recognised by its payload. */
  readonly findDeployment: (
    input: FindDeploymentInput
  ) => Effect.Effect<{ readonly id: number } | undefined, GitHubError>
  /** App mode: the installation id for a repository, looked up once and remembered. */
  readonly installationFor: (owner: string, repo: string) => Effect.Effect<number, GitHubError>
}

const rateLimited = (message: string) => /rate limit/i.test(message)

/** Turns whatever Octokit threw into a GitHubError a person can act on. */
export const toGitHubError = (operation: string, e: unknown): GitHubError => {
  const err = e as { status?: unknown; message?: unknown; response?: { data?: unknown }; name?: unknown }
  const hasResponse = err?.response !== undefined
  const status = hasResponse && typeof err.status === "number" ? err.status : 0
  let message = typeof err?.message === "string" ? err.message : String(e)
  const data = err?.response?.data as { errors?: unknown } | undefined
  if (data && Array.isArray(data.errors) && data.errors.length > 0 && !message.includes("errors")) {
    message += ` (${JSON.stringify(data.errors)})`
  }
  if (status === 0) message = `no response from GitHub: ${message}`
  const retryable = status === 0 || status === 429 || status >= 500 || (status === 403 && rateLimited(message))
  return new GitHubError({ operation, status, message, retryable })
}

const refused = (operation: string, message: string) =>
  new GitHubError({ operation, status: 422, message: `not sent: ${message}`, retryable: false })

const safeParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const repoKey = (owner: string, repo: string) => `${owner}/${repo}`.toLowerCase()

const outputOf = (i: { title: string; summary: string; text?: string | undefined; name: string }) => ({
  title: sanitizeTitle(i.title, i.name),
  summary: truncateBytes(i.summary),
  ...(i.text !== undefined ? { text: truncateBytes(i.text) } : {})
})

const makeService = (config: GitHubConfig, log: OctokitLog, clock: Clock.Clock): GitHubShape => {
  const tuning: GitHubTuning = { ...defaultTuning, ...config.tuning }
  const shared: ClientShared = makeClientShared(config.apiUrl, tuning, log, () => clock.currentTimeMillisUnsafe())
  const auth = config.auth

  const call = <A>(operation: string, run: (signal: AbortSignal) => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (e) => toGitHubError(operation, e) })

  // Token mode: one client. App mode: one JWT client for the App's own routes, and one
  // client per installation (each mints and caches that installation's tokens).
  const clients = auth.mode === "token"
    ? { mode: "token" as const, token: tokenClient(shared, Redacted.value(auth.token)) }
    : (() => {
      const app = { appId: auth.appId, privateKey: Redacted.value(auth.privateKey) }
      return { mode: "app" as const, app, jwt: appClient(shared, app) }
    })()
  const installationIds = new Map<string, number>()
  const installationClients = new Map<number, SacarOctokit>()

  const installationFor = (owner: string, repo: string): Effect.Effect<number, GitHubError> => {
    const known = installationIds.get(repoKey(owner, repo))
    if (known !== undefined) return Effect.succeed(known)
    if (clients.mode === "token") {
      return Effect.fail(
        new GitHubError({
          operation: "installationFor",
          status: 403,
          message: "installations exist only in GitHub App mode (GITHUB_APP_ID)",
          retryable: false
        })
      )
    }
    return call(
      "installationFor",
      (signal) => clients.jwt.rest.apps.getRepoInstallation({ owner, repo, request: { signal } })
    ).pipe(
      Effect.mapError((e) =>
        e.status === 404
          ? new GitHubError({
            operation: e.operation,
            status: 404,
            retryable: false,
            message: `the GitHub App is not installed on ${owner}/${repo} (${e.message})`
          })
          : e
      ),
      Effect.map((res) => {
        installationIds.set(repoKey(owner, repo), res.data.id)
        return res.data.id
      })
    )
  }

  const clientFor = (target: RepoTarget): Effect.Effect<SacarOctokit, GitHubError> => {
    if (clients.mode === "token") return Effect.succeed(clients.token)
    const id = target.installationId
    if (id !== undefined) installationIds.set(repoKey(target.owner, target.repo), id)
    return (id !== undefined ? Effect.succeed(id) : installationFor(target.owner, target.repo)).pipe(
      Effect.map((installationId) => {
        let client = installationClients.get(installationId)
        if (client === undefined) {
          client = appClient(shared, { ...clients.app, installationId })
          installationClients.set(installationId, client)
        }
        return client
      })
    )
  }

  // A 401/404 may mean the App was uninstalled or reinstalled: look the id up again next time.
  const forgetOnAuthError = (target: RepoTarget) => (e: GitHubError) =>
    Effect.sync(() => {
      if (e.status === 401 || e.status === 404) installationIds.delete(repoKey(target.owner, target.repo))
    })

  const send = <A>(
    operation: string,
    target: RepoTarget,
    run: (client: SacarOctokit, signal: AbortSignal) => Promise<A>
  ) =>
    clientFor(target).pipe(
      Effect.flatMap((client) => call(operation, (signal) => run(client, signal))),
      Effect.tapError(forgetOnAuthError(target)),
      Effect.annotateLogs({ github: operation, repo: `${target.owner}/${target.repo}` })
    )

  const checksNeedApp = (operation: string) =>
    Effect.fail(
      new GitHubError({
        operation,
        status: 403,
        message: "check runs need GitHub App mode (GITHUB_APP_ID); token mode reports commit statuses",
        retryable: false
      })
    )

  const actionsOf = (operation: string, actions: ReadonlyArray<CheckRunAction> | undefined) => {
    if (actions === undefined) return Effect.succeed(undefined)
    const checked = checkActions(actions)
    return "problem" in checked ? Effect.fail(refused(operation, checked.problem)) : Effect.succeed(checked.ok)
  }

  const completion = (operation: string, status: CheckRunStatus, conclusion: CheckRunConclusion | undefined) =>
    status === "completed" && conclusion === undefined
      ? Effect.fail(refused(operation, "a completed check run needs a conclusion"))
      : Effect.void

  /**
   * A create is sent once per attempt and never re-sent by the client: GitHub may
   * have applied one whose answer was a 5xx or a timeout. Before each further attempt
   * (a retryable failure, backing off as the client would) the object is looked for,
   * and found is as good as created.
   */
  const createOnce = <A>(
    create: Effect.Effect<A, GitHubError>,
    find: Effect.Effect<A | undefined, GitHubError>
  ): Effect.Effect<A, GitHubError> =>
    create.pipe(
      Effect.catch((first) =>
        isTransientGitHubError(first)
          ? Effect.flatMap(find, (found) => (found === undefined ? create : Effect.succeed(found))).pipe(
            Effect.delay(Duration.millis(tuning.retryBaseMs)),
            Effect.retry({
              schedule: githubRetry(tuning.retryBaseMs, tuning.retries - 1),
              while: isTransientGitHubError
            })
          )
          : Effect.fail(first)
      )
    )

  const createCheckRunOnce = Effect.fn("GitHub.createCheckRun")(function*(i: CreateCheckRunInput) {
    if (auth.mode !== "app") return yield* checksNeedApp("createCheckRun")
    yield* completion("createCheckRun", i.status, i.conclusion)
    const actions = yield* actionsOf("createCheckRun", i.actions)
    const res = yield* send("createCheckRun", i, (c, signal) =>
      c.rest.checks.create({
        owner: i.owner,
        repo: i.repo,
        name: i.name,
        head_sha: i.headSha,
        status: i.status,
        ...(i.conclusion !== undefined ? { conclusion: i.conclusion } : {}),
        ...(i.detailsUrl !== undefined ? { details_url: i.detailsUrl } : {}),
        ...(i.externalId !== undefined ? { external_id: i.externalId } : {}),
        ...(actions !== undefined ? { actions } : {}),
        output: outputOf(i),
        // Never re-sent: GitHub may have applied a create whose answer was a 5xx or a
        // timeout. The caller looks for the run (findCheckRun) before creating again.
        request: { signal, retries: 0 }
      }))
    return { id: res.data.id }
  })

  const updateCheckRun = Effect.fn("GitHub.updateCheckRun")(function*(i: UpdateCheckRunInput) {
    if (auth.mode !== "app") return yield* checksNeedApp("updateCheckRun")
    yield* completion("updateCheckRun", i.status, i.conclusion)
    const actions = yield* actionsOf("updateCheckRun", i.actions)
    yield* send("updateCheckRun", i, (c, signal) =>
      c.rest.checks.update({
        owner: i.owner,
        repo: i.repo,
        check_run_id: i.checkRunId,
        status: i.status,
        ...(i.conclusion !== undefined ? { conclusion: i.conclusion } : {}),
        ...(i.detailsUrl !== undefined ? { details_url: i.detailsUrl } : {}),
        ...(actions !== undefined ? { actions } : {}),
        output: outputOf({ ...i, name: "Sacar" }),
        request: { signal }
      }))
  })

  const createDeploymentOnce = Effect.fn("GitHub.createDeployment")(function*(i: CreateDeploymentInput) {
    const res = yield* send("createDeployment", i, (c, signal) =>
      c.rest.repos.createDeployment({
        owner: i.owner,
        repo: i.repo,
        ref: i.ref,
        environment: i.environment,
        description: truncateChars(i.description, STATUS_DESCRIPTION_MAX),
        payload: { ...i.payload },
        // Deploy exactly this commit: no merge of the default branch, no status gate.
        auto_merge: false,
        required_contexts: [],
        production_environment: i.environment === "production",
        // Never re-sent (see createCheckRun); the caller looks first (findDeployment).
        request: { signal, retries: 0 }
      }))
    if (!("id" in res.data) || typeof res.data.id !== "number") {
      return yield* new GitHubError({
        operation: "createDeployment",
        status: res.status,
        message: `GitHub created no deployment: ${JSON.stringify(res.data)}`,
        retryable: false
      })
    }
    return { id: res.data.id }
  })

  const createDeploymentStatus = Effect.fn("GitHub.createDeploymentStatus")(function*(i: CreateDeploymentStatusInput) {
    yield* send("createDeploymentStatus", i, (c, signal) =>
      c.rest.repos.createDeploymentStatus({
        owner: i.owner,
        repo: i.repo,
        deployment_id: i.deploymentId,
        state: i.state,
        description: truncateChars(i.description, STATUS_DESCRIPTION_MAX),
        environment: i.environment,
        ...(i.logUrl !== undefined ? { log_url: i.logUrl } : {}),
        request: { signal }
      }))
  })

  const createCommitStatus = Effect.fn("GitHub.createCommitStatus")(function*(i: CreateCommitStatusInput) {
    yield* send("createCommitStatus", i, (c, signal) =>
      c.rest.repos.createCommitStatus({
        owner: i.owner,
        repo: i.repo,
        sha: i.sha,
        state: i.state,
        context: i.context,
        description: truncateChars(i.description, STATUS_DESCRIPTION_MAX),
        ...(i.targetUrl !== undefined ? { target_url: i.targetUrl } : {}),
        request: { signal }
      }))
  })

  const findCheckRun = Effect.fn("GitHub.findCheckRun")(function*(i: FindCheckRunInput) {
    if (auth.mode !== "app") return yield* checksNeedApp("findCheckRun")
    const res = yield* send("findCheckRun", i, (c, signal) =>
      c.rest.checks.listForRef({
        owner: i.owner,
        repo: i.repo,
        ref: i.headSha,
        check_name: i.name,
        filter: "all",
        per_page: 100,
        request: { signal }
      }))
    const ids = res.data.check_runs
      .filter((r) => r.external_id === i.externalId && r.name === i.name && r.id !== i.exclude)
      .map((r) => r.id)
    return ids.length === 0 ? undefined : { id: Math.max(...ids) }
  })

  const findDeployment = Effect.fn("GitHub.findDeployment")(function*(i: FindDeploymentInput) {
    const res = yield* send("findDeployment", i, (c, signal) =>
      c.rest.repos.listDeployments({
        owner: i.owner,
        repo: i.repo,
        sha: i.sha,
        environment: i.environment,
        per_page: 100,
        request: { signal }
      }))
    const found = res.data.find((d) => i.matches(d.payload))
    return found === undefined ? undefined : { id: found.id }
  })

  const createCheckRun = (i: CreateCheckRunInput) =>
    createOnce(
      createCheckRunOnce(i),
      i.externalId === undefined
        ? Effect.succeed(undefined)
        : findCheckRun({ ...i, externalId: i.externalId })
    )

  const createDeployment = (i: CreateDeploymentInput) => {
    const wanted = JSON.stringify(i.payload)
    return createOnce(
      createDeploymentOnce(i),
      findDeployment({
        ...i,
        sha: i.ref,
        matches: (payload) => JSON.stringify(typeof payload === "string" ? safeParse(payload) : payload) === wanted
      })
    )
  }

  return {
    mode: auth.mode,
    findCheckRun,
    findDeployment,
    createCheckRun,
    updateCheckRun,
    createDeployment,
    createDeploymentStatus,
    createCommitStatus,
    installationFor: (owner, repo) => installationFor(owner, repo).pipe(Effect.withSpan("GitHub.installationFor"))
  }
}

/**
 * Octokit's and auth-app's log lines, sent to the Effect logger (they carry no secrets:
 * method, path, status, request id). Octokit logs every failed attempt as an error, even
 * one a retry then fixes or a 404 the caller expects; the caller logs what finally
 * failed, so those go to debug. Warnings (rate limits, token renewal) stay warnings.
 */
const effectLog = Effect.gen(function*() {
  const context = yield* Effect.context<never>()
  const fork = Effect.runForkWith(context)
  const log: OctokitLog = {
    debug: () => {},
    info: () => {},
    warn: (message) => void fork(Effect.logWarning(message)),
    error: (message) => void fork(Effect.logDebug(message))
  }
  return log
})

export class GitHub extends Context.Service<GitHub, GitHubShape>()("sacar/GitHub") {
  /** A service for a given configuration (tests pass the fake's URL and short tuning). */
  static readonly layerFrom = (config: GitHubConfig): Layer.Layer<GitHub> =>
    Layer.effect(
      GitHub,
      Effect.gen(function*() {
        return GitHub.of(makeService(config, yield* effectLog, yield* Clock.Clock))
      })
    )

  /** A service configured from the process environment (see config.ts for the variables). */
  static readonly layer: Layer.Layer<GitHub, GitHubConfigError> = Layer.effect(
    GitHub,
    Effect.gen(function*() {
      const config = yield* githubConfigFromEnv(process.env)
      return GitHub.of(makeService(config, yield* effectLog, yield* Clock.Clock))
    })
  )
}
