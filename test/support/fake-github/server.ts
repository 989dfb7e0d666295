// A GitHub REST API stand-in for tests: node:http on port 0, state in memory, every
// request judged against GitHub's OpenAPI description plus the rules it leaves out.
import { createHash, createPublicKey, randomBytes, randomUUID } from "node:crypto"
import type { KeyObject } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { jwtProblem } from "./jwt.ts"
import { matchOperation, schemaProblems, servedOperations } from "./openapi.ts"
import type { OperationId } from "./openapi.ts"
import { extraProblems } from "./rules.ts"

export interface FakeGitHubOptions {
  /** Accept GitHub App auth: JWTs signed by this key's private half, for this App id. */
  readonly app?: { readonly appId: string | number; readonly publicKey: KeyObject | string }
  /** Accept this personal access token (token mode). It may not write check runs, like a PAT. */
  readonly token?: string
  /** Installation id per "owner/repo" (case-insensitive). */
  readonly installations?: Readonly<Record<string, number>>
  /** Installation of repositories not listed above; null: the App is not installed there. Default 1. */
  readonly defaultInstallationId?: number | null
  /** Lifetime of minted installation tokens (GitHub: 3600). */
  readonly tokenTtlSec?: number
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly operationId: OperationId | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
  status: number
  readonly at: number
}

export interface Violation {
  readonly method: string
  readonly path: string
  readonly operationId: OperationId | undefined
  readonly problems: ReadonlyArray<string>
}

export interface CheckRunRecord {
  readonly id: number
  readonly owner: string
  readonly repo: string
  readonly installationId: number | undefined
  name: string
  head_sha: string
  status: string
  conclusion: string | null
  details_url: string | null
  external_id: string | null
  started_at: string | null
  completed_at: string | null
  output: { title: string | null; summary: string | null; text: string | null }
  actions: Array<{ label: string; description: string; identifier: string }>
  /** Every accepted request body for this run, create first. */
  readonly history: Array<{ readonly operation: "create" | "update"; readonly body: Record<string, unknown> }>
}

export interface DeploymentStatusRecord {
  readonly id: number
  readonly state: string
  readonly description: string
  readonly environment: string
  readonly log_url: string
  readonly target_url: string
  readonly created_at: string
}

export interface DeploymentRecord {
  readonly id: number
  readonly owner: string
  readonly repo: string
  readonly ref: string
  readonly sha: string
  readonly task: string
  readonly environment: string
  readonly description: string | null
  readonly payload: unknown
  readonly body: Record<string, unknown>
  readonly statuses: Array<DeploymentStatusRecord>
}

export interface CommitStatusRecord {
  readonly id: number
  readonly owner: string
  readonly repo: string
  readonly sha: string
  readonly state: string
  readonly context: string
  readonly description: string | null
  readonly target_url: string | null
}

export interface IssuedToken {
  readonly installationId: number
  readonly token: string
  readonly expiresAt: string
}

export interface Fault {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly message: string
  /** Only requests to this operation fail; others pass untouched. */
  readonly operationId: OperationId | undefined
  /** The request is carried out, then answered with the fault (GitHub applied it; the answer was lost). */
  readonly applied: boolean
}

export interface FakeGitHub {
  /** Base URL to give Octokit / GITHUB_API_URL. */
  readonly url: string
  readonly requests: ReadonlyArray<RecordedRequest>
  readonly violations: ReadonlyArray<Violation>
  checkRuns(): ReadonlyArray<CheckRunRecord>
  deployments(): ReadonlyArray<DeploymentRecord>
  commitStatuses(): ReadonlyArray<CommitStatusRecord>
  issuedTokens(): ReadonlyArray<IssuedToken>
  /**
   * The next `n` requests (optionally only those to one operation) get `status` instead of
   * their answer, after validation. Default messages: 403 a secondary rate limit, 429 and
   * others GitHub's usual text.
   */
  failNext(
    n: number,
    status: number,
    headers?: Readonly<Record<string, string>>,
    options?: { readonly message?: string; readonly operationId?: OperationId; readonly applied?: boolean }
  ): void
  /**
   * GitHub unreachable for `ms`: "refuse" closes the listener (connection refused, same
   * port afterwards), "503" answers 503 to everything. Resolves once it is down.
   */
  down(ms: number, how?: "refuse" | "503"): Promise<void>
  /** Installs the App on a repository (or moves it to another installation). */
  install(owner: string, repo: string, installationId: number): void
  close(): Promise<void>
}

const MAX_BODY_BYTES = 30 * 1024 * 1024
const DOCS = "https://docs.github.com/rest"

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY_BYTES) req.destroy(new Error("body too large"))
      else chunks.push(c)
    })
    req.on("end", () => resolve(Buffer.concat(chunks)))
    req.on("error", reject)
  })

const defaultFaultMessage = (status: number): string => {
  switch (status) {
    case 403:
      return "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID."
    case 429:
      return "API rate limit exceeded for installation."
    case 502:
      return "Server Error"
    case 503:
      return "Service Unavailable"
    default:
      return status >= 500 ? "Internal Server Error" : "Error"
  }
}

const fakeSha = (ref: string) => createHash("sha1").update(ref).digest("hex")
const iso = (d = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, "Z")

export const startFakeGitHub = async (options: FakeGitHubOptions = {}): Promise<FakeGitHub> => {
  const ops = await servedOperations()
  const appId = options.app ? String(options.app.appId) : undefined
  const publicKey = options.app
    ? typeof options.app.publicKey === "string" ? createPublicKey(options.app.publicKey) : options.app.publicKey
    : undefined
  const installations = new Map(Object.entries(options.installations ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
  const defaultInstallation = options.defaultInstallationId === undefined ? 1 : options.defaultInstallationId
  const tokenTtlSec = options.tokenTtlSec ?? 3600

  const requests: Array<RecordedRequest> = []
  const violations: Array<Violation> = []
  const checkRuns = new Map<number, CheckRunRecord>()
  const deployments = new Map<number, DeploymentRecord>()
  const commitStatuses: Array<CommitStatusRecord> = []
  const tokens = new Map<string, IssuedToken>()
  const faults: Array<Fault> = []
  let answer503 = false
  let nextId = 4_000_000_001 // above 2^31, as real check-run ids are
  const newId = () => nextId++
  const timers = new Set<NodeJS.Timeout>()
  let closed = false

  const installationOf = (owner: string, repo: string): number | undefined =>
    installations.get(`${owner}/${repo}`.toLowerCase()) ?? defaultInstallation ?? undefined

  let baseUrl = ""
  const repoUrl = (owner: string, repo: string) => `${baseUrl}/repos/${owner}/${repo}`
  const account = (login: string) => ({
    login,
    id: 1000,
    node_id: "MDQ6VXNlcjEwMDA=",
    type: "Organization",
    site_admin: false,
    url: `${baseUrl}/users/${login}`
  })
  const appInfo = () => ({
    id: Number(appId ?? 1),
    slug: "sacar",
    node_id: "MDM6QXBwMQ==",
    name: "Sacar",
    owner: account("sacar"),
    external_url: "https://sacar.example",
    html_url: "https://github.com/apps/sacar",
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
    permissions: {},
    events: []
  })

  const send = (
    res: ServerResponse,
    rec: RecordedRequest | undefined,
    status: number,
    body: unknown,
    headers: Record<string, string> = {}
  ) => {
    if (rec) rec.status = status
    const text = body === undefined ? "" : JSON.stringify(body)
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "x-github-request-id": randomUUID(),
      "x-github-api-version-selected": "2022-11-28",
      "x-ratelimit-limit": "5000",
      "x-ratelimit-remaining": "4999",
      "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
      "x-ratelimit-used": "1",
      "x-ratelimit-resource": "core",
      ...headers
    })
    res.end(text)
  }

  const reject = (
    res: ServerResponse,
    rec: RecordedRequest,
    status: number,
    message: string,
    problems: ReadonlyArray<string>
  ) => {
    violations.push({ method: rec.method, path: rec.path, operationId: rec.operationId, problems })
    send(res, rec, status, {
      message,
      ...(status === 422
        ? { errors: problems.map((p) => ({ resource: "Request", code: "invalid", message: p })) }
        : {}),
      documentation_url: DOCS,
      status: String(status)
    })
  }

  type Auth =
    | { readonly kind: "jwt" }
    | { readonly kind: "installation"; readonly installationId: number }
    | { readonly kind: "pat" }
    | { readonly kind: "bad"; readonly status: number; readonly message: string }

  const authenticate = (header: string | undefined, wantsJwt: boolean): Auth => {
    if (header === undefined || header.trim() === "")
      return { kind: "bad", status: 401, message: "Requires authentication (no Authorization header)" }
    const m = /^(bearer|token)\s+(\S+)$/i.exec(header.trim())
    if (!m) return { kind: "bad", status: 401, message: "Authorization header is neither 'Bearer …' nor 'token …'" }
    const credential = m[2] as string
    if (wantsJwt) {
      if (publicKey === undefined || appId === undefined)
        return { kind: "bad", status: 401, message: "this fake has no GitHub App configured" }
      if (m[1]?.toLowerCase() !== "bearer")
        return { kind: "bad", status: 401, message: "App routes need 'Bearer <JWT>'" }
      const problem = jwtProblem(credential, publicKey, appId)
      return problem === undefined ? { kind: "jwt" } : { kind: "bad", status: 401, message: problem }
    }
    const issued = tokens.get(credential)
    if (issued) {
      if (Date.parse(issued.expiresAt) <= Date.now())
        return { kind: "bad", status: 401, message: "Bad credentials (installation token expired)" }
      return { kind: "installation", installationId: issued.installationId }
    }
    if (options.token !== undefined && credential === options.token) return { kind: "pat" }
    return { kind: "bad", status: 401, message: "Bad credentials" }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req)
    const url = new URL(req.url ?? "/", "http://fake")
    const method = (req.method ?? "GET").toUpperCase()
    const matched = matchOperation(ops, method, url.pathname)
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v ?? ""])
    )
    if (headers["authorization"])
      headers["authorization"] = headers["authorization"].replace(/^(\S+)\s+.*$/, "$1 [REDACTED]")
    let body: unknown
    let parseProblem: string | undefined
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString("utf8"))
      } catch {
        parseProblem = "Problems parsing JSON"
      }
    }
    const rec: RecordedRequest = {
      method,
      path: url.pathname,
      operationId: matched?.operation.operationId,
      headers,
      body,
      status: 0,
      at: Date.now()
    }
    requests.push(rec)

    if (answer503) return send(res, rec, 503, { message: "Service Unavailable" })
    if (!matched) return reject(res, rec, 404, "Not Found", [`the fake serves no ${method} ${url.pathname}`])
    if (parseProblem) return reject(res, rec, 400, parseProblem, [parseProblem])

    const operationId = matched.operation.operationId
    const wantsJwt = operationId.startsWith("apps/")
    const auth = authenticate(req.headers.authorization, wantsJwt)
    if (auth.kind === "bad") return reject(res, rec, auth.status, auth.message, [auth.message])

    const problems = [...schemaProblems(matched, body), ...extraProblems(operationId, matched.params, body)]
    if (!req.headers["user-agent"]) problems.push("User-Agent header missing (GitHub rejects such requests)")
    if (body !== undefined && !/application\/json/i.test(req.headers["content-type"] ?? ""))
      problems.push("Content-Type is not application/json")
    if (problems.length > 0) {
      const message = problems.some((p) => p.startsWith("No commit found"))
        ? "No commit found for SHA"
        : "Invalid request.\n\n" + problems.join("\n")
      return reject(res, rec, 422, message, problems)
    }

    const { owner = "", repo = "" } = matched.params
    if (!wantsJwt) {
      if (operationId.startsWith("checks/") && auth.kind === "pat") {
        return reject(res, rec, 403, "You must authenticate via a GitHub App.", [
          "check runs written with a personal access token"
        ])
      }
      if (auth.kind === "installation" && installationOf(owner, repo) !== auth.installationId) {
        return reject(res, rec, 403, "Resource not accessible by integration", [
          `installation ${auth.installationId} has no access to ${owner}/${repo}`
        ])
      }
    }

    const faultIndex = faults.findIndex((f) => f.operationId === undefined || f.operationId === operationId)
    let appliedFault: Fault | undefined
    if (faultIndex >= 0) {
      const [fault] = faults.splice(faultIndex, 1) as [Fault]
      if (!fault.applied) {
        return send(res, rec, fault.status, {
          message: fault.message,
          documentation_url: DOCS,
          status: String(fault.status)
        }, { ...fault.headers })
      }
      appliedFault = fault
    }
    // An applied fault: the operation below takes effect, its answer is replaced by the fault's.
    const reply = appliedFault === undefined ? send : (
      r: ServerResponse,
      recorded: RecordedRequest | undefined,
      _status: number,
      _body: unknown
    ) =>
      send(r, recorded, appliedFault.status, {
        message: appliedFault.message,
        documentation_url: DOCS,
        status: String(appliedFault.status)
      }, { ...appliedFault.headers })

    const b = (body ?? {}) as Record<string, unknown>
    const installationId = auth.kind === "installation" ? auth.installationId : undefined
    switch (operationId) {
      case "apps/get-repo-installation": {
        const id = installationOf(owner, repo)
        if (id === undefined)
          return reply(res, rec, 404, { message: "Not Found", documentation_url: DOCS, status: "404" })
        return reply(res, rec, 200, {
          id,
          account: account(owner),
          app_id: Number(appId),
          app_slug: "sacar",
          target_id: 1000,
          target_type: "Organization",
          repository_selection: "all",
          access_tokens_url: `${baseUrl}/app/installations/${id}/access_tokens`,
          repositories_url: `${baseUrl}/installation/repositories`,
          html_url: `https://github.com/settings/installations/${id}`,
          permissions: {
            checks: "write",
            deployments: "write",
            statuses: "write",
            contents: "read",
            metadata: "read",
            actions: "read"
          },
          events: ["check_run", "check_suite", "deployment", "push", "workflow_run"],
          single_file_name: null,
          has_multiple_single_files: false,
          single_file_paths: [],
          suspended_at: null,
          suspended_by: null,
          created_at: "2026-01-01T00:00:00Z",
          updated_at: "2026-01-01T00:00:00Z"
        })
      }
      case "apps/create-installation-access-token": {
        const id = Number(matched.params["installation_id"])
        if (![...installations.values(), defaultInstallation].includes(id)) {
          return reply(res, rec, 404, { message: "Not Found", documentation_url: DOCS, status: "404" })
        }
        const token = `ghs_${randomBytes(18).toString("base64url")}`
        const expiresAt = iso(new Date(Date.now() + tokenTtlSec * 1000))
        tokens.set(token, { installationId: id, token, expiresAt })
        return reply(res, rec, 201, {
          token,
          expires_at: expiresAt,
          permissions: { checks: "write", deployments: "write", statuses: "write", metadata: "read" },
          repository_selection: "all"
        })
      }
      case "checks/list-for-ref": {
        const ref = String(matched.params["ref"]).toLowerCase()
        const name = url.searchParams.get("check_name")
        const runs = [...checkRuns.values()].filter((r) =>
          r.owner.toLowerCase() === owner.toLowerCase() && r.repo.toLowerCase() === repo.toLowerCase() &&
          r.head_sha === ref && (name === null || r.name === name)
        )
        return reply(res, rec, 200, { total_count: runs.length, check_runs: runs.map(checkRunJson) })
      }
      case "repos/list-deployments": {
        const sha = url.searchParams.get("sha")
        const environment = url.searchParams.get("environment")
        const found = [...deployments.values()].filter((d) =>
          d.owner.toLowerCase() === owner.toLowerCase() && d.repo.toLowerCase() === repo.toLowerCase() &&
          (sha === null || d.sha === sha.toLowerCase()) && (environment === null || d.environment === environment)
        )
        return reply(res, rec, 200, found.reverse().map(deploymentJson))
      }
      case "checks/create": {
        const id = newId()
        const output = (b["output"] ?? {}) as Record<string, string | undefined>
        const conclusion = (b["conclusion"] as string | undefined) ?? null
        const run: CheckRunRecord = {
          id,
          owner,
          repo,
          installationId,
          name: String(b["name"]),
          head_sha: String(b["head_sha"]),
          status: conclusion !== null ? "completed" : (b["status"] as string | undefined) ?? "queued",
          conclusion,
          details_url: (b["details_url"] as string | undefined) ?? null,
          external_id: (b["external_id"] as string | undefined) ?? null,
          started_at: (b["started_at"] as string | undefined) ?? iso(),
          completed_at: conclusion !== null ? (b["completed_at"] as string | undefined) ?? iso() : null,
          output: { title: output["title"] ?? null, summary: output["summary"] ?? null, text: output["text"] ?? null },
          actions: (b["actions"] as CheckRunRecord["actions"] | undefined) ?? [],
          history: [{ operation: "create", body: b }]
        }
        checkRuns.set(id, run)
        return reply(res, rec, 201, checkRunJson(run))
      }
      case "checks/update": {
        const run = checkRuns.get(Number(matched.params["check_run_id"]))
        if (!run || run.owner.toLowerCase() !== owner.toLowerCase() || run.repo.toLowerCase() !== repo.toLowerCase()) {
          return reply(res, rec, 404, { message: "Not Found", documentation_url: DOCS, status: "404" })
        }
        if (typeof b["name"] === "string") run.name = b["name"]
        if (typeof b["details_url"] === "string") run.details_url = b["details_url"]
        if (typeof b["external_id"] === "string") run.external_id = b["external_id"]
        if (typeof b["status"] === "string") run.status = b["status"]
        if (typeof b["conclusion"] === "string") {
          run.conclusion = b["conclusion"]
          run.status = "completed"
          run.completed_at = (b["completed_at"] as string | undefined) ?? iso()
        }
        const output = b["output"] as Record<string, string | undefined> | undefined
        if (output)
          run.output = {
            title: output["title"] ?? run.output.title,
            summary: output["summary"] ?? null,
            text: output["text"] ?? null
          }
        if (Array.isArray(b["actions"])) run.actions = b["actions"] as CheckRunRecord["actions"]
        run.history.push({ operation: "update", body: b })
        return reply(res, rec, 200, checkRunJson(run))
      }
      case "repos/create-deployment": {
        const id = newId()
        const ref = String(b["ref"])
        const environment = (b["environment"] as string | undefined) ?? "production"
        const d: DeploymentRecord = {
          id,
          owner,
          repo,
          ref,
          sha: /^[0-9a-f]{40}$/i.test(ref) ? ref.toLowerCase() : fakeSha(ref),
          task: (b["task"] as string | undefined) ?? "deploy",
          environment,
          description: (b["description"] as string | null | undefined) ?? "",
          payload: b["payload"] ?? {},
          body: b,
          statuses: []
        }
        deployments.set(id, d)
        return reply(res, rec, 201, deploymentJson(d))
      }
      case "repos/create-deployment-status": {
        const d = deployments.get(Number(matched.params["deployment_id"]))
        if (!d || d.owner.toLowerCase() !== owner.toLowerCase() || d.repo.toLowerCase() !== repo.toLowerCase()) {
          return reply(res, rec, 404, { message: "Not Found", documentation_url: DOCS, status: "404" })
        }
        const logUrl = (b["log_url"] as string | undefined) ?? (b["target_url"] as string | undefined) ?? ""
        const s: DeploymentStatusRecord = {
          id: newId(),
          state: String(b["state"]),
          description: (b["description"] as string | undefined) ?? "",
          environment: (b["environment"] as string | undefined) ?? d.statuses.at(-1)?.environment ?? d.environment,
          log_url: logUrl,
          target_url: logUrl,
          created_at: iso()
        }
        d.statuses.push(s)
        return reply(res, rec, 201, {
          url: `${repoUrl(owner, repo)}/deployments/${d.id}/statuses/${s.id}`,
          id: s.id,
          node_id: `DES_${s.id}`,
          state: s.state,
          creator: account("sacar[bot]"),
          description: s.description,
          environment: s.environment,
          target_url: s.target_url,
          log_url: s.log_url,
          environment_url: (b["environment_url"] as string | undefined) ?? "",
          created_at: s.created_at,
          updated_at: s.created_at,
          deployment_url: `${repoUrl(owner, repo)}/deployments/${d.id}`,
          repository_url: repoUrl(owner, repo),
          performed_via_github_app: null
        })
      }
      case "repos/create-commit-status": {
        const s: CommitStatusRecord = {
          id: newId(),
          owner,
          repo,
          sha: String(matched.params["sha"]).toLowerCase(),
          state: String(b["state"]),
          context: (b["context"] as string | undefined) ?? "default",
          description: (b["description"] as string | null | undefined) ?? null,
          target_url: (b["target_url"] as string | null | undefined) ?? null
        }
        commitStatuses.push(s)
        return reply(res, rec, 201, {
          url: `${repoUrl(owner, repo)}/statuses/${s.sha}`,
          avatar_url: null,
          id: s.id,
          node_id: `SC_${s.id}`,
          state: s.state,
          description: s.description,
          target_url: s.target_url,
          context: s.context,
          created_at: iso(),
          updated_at: iso(),
          creator: account("sacar")
        })
      }
    }
  }

  const checkRunJson = (r: CheckRunRecord) => ({
    id: r.id,
    node_id: `CR_${r.id}`,
    head_sha: r.head_sha,
    external_id: r.external_id ?? "",
    url: `${repoUrl(r.owner, r.repo)}/check-runs/${r.id}`,
    html_url: `https://github.com/${r.owner}/${r.repo}/runs/${r.id}`,
    details_url: r.details_url ?? "https://sacar.example",
    status: r.status,
    conclusion: r.conclusion,
    started_at: r.started_at,
    completed_at: r.completed_at,
    output: {
      ...r.output,
      annotations_count: 0,
      annotations_url: `${repoUrl(r.owner, r.repo)}/check-runs/${r.id}/annotations`
    },
    name: r.name,
    check_suite: { id: 5_000_000_000 + (r.id % 1_000_000) },
    app: appInfo(),
    pull_requests: []
  })

  const deploymentJson = (d: DeploymentRecord) => ({
    url: `${repoUrl(d.owner, d.repo)}/deployments/${d.id}`,
    id: d.id,
    node_id: `DE_${d.id}`,
    sha: d.sha,
    ref: d.ref,
    task: d.task,
    payload: d.payload,
    original_environment: d.environment,
    environment: d.environment,
    description: d.description,
    creator: account("sacar[bot]"),
    created_at: iso(),
    updated_at: iso(),
    statuses_url: `${repoUrl(d.owner, d.repo)}/deployments/${d.id}/statuses`,
    repository_url: repoUrl(d.owner, d.repo),
    transient_environment: d.body["transient_environment"] === true,
    production_environment: (d.body["production_environment"] as boolean | undefined) ?? d.environment === "production",
    performed_via_github_app: null
  })

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, undefined, 500, { message: `fake GitHub crashed: ${(e as Error).message}` })
      else res.destroy()
    })
  })
  server.keepAliveTimeout = 1000
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject)
        resolve()
      })
    })
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve()
      server.close(() => resolve())
      server.closeAllConnections()
    })
  await listen(0)
  const port = (server.address() as AddressInfo).port
  baseUrl = `http://127.0.0.1:${port}`

  return {
    url: baseUrl,
    requests,
    violations,
    checkRuns: () => [...checkRuns.values()],
    deployments: () => [...deployments.values()],
    commitStatuses: () => [...commitStatuses],
    issuedTokens: () => [...tokens.values()],
    failNext: (n, status, headers = {}, opts = {}) => {
      for (let i = 0; i < n; i++) {
        faults.push({
          status,
          headers,
          message: opts.message ?? defaultFaultMessage(status),
          operationId: opts.operationId,
          applied: opts.applied ?? false
        })
      }
    },
    down: async (ms, how = "refuse") => {
      if (how === "503") {
        answer503 = true
        const t = setTimeout(() => {
          timers.delete(t)
          answer503 = false
        }, ms)
        timers.add(t)
        return
      }
      await stop()
      const t = setTimeout(() => {
        timers.delete(t)
        if (!closed) listen(port).catch(() => {})
      }, ms)
      timers.add(t)
    },
    install: (owner, repo, installationId) => {
      installations.set(`${owner}/${repo}`.toLowerCase(), installationId)
    },
    close: async () => {
      closed = true
      for (const t of timers) clearTimeout(t)
      timers.clear()
      await stop()
    }
  }
}
