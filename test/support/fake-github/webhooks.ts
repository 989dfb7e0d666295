// Webhook deliveries as GitHub makes them: real example payloads from
// @octokit/webhooks-examples, adjusted to the test's repository and commit, signed with
// X-Hub-Signature-256.
import type { WebhookDefinition } from "@octokit/webhooks-examples"
import { sign } from "@octokit/webhooks-methods"
import { randomUUID } from "node:crypto"
import { createRequire } from "node:module"

export interface DeliveryResult {
  readonly status: number
  readonly body: string
  readonly deliveryId: string
}

export interface SendWebhookOptions {
  /** Reuse a delivery id, as GitHub does on redelivery. */
  readonly deliveryId?: string
  /** Replace the computed signature (e.g. to test rejection); null sends none. */
  readonly signature?: string | null
  /** Send this exact body instead of JSON.stringify(payload). */
  readonly rawBody?: string
}

/** POSTs `payload` to `url` with the headers GitHub sends, signed with `secret`. */
export const sendWebhook = async (
  url: string,
  secret: string,
  event: string,
  payload: unknown,
  options: SendWebhookOptions = {}
): Promise<DeliveryResult> => {
  const body = options.rawBody ?? JSON.stringify(payload)
  const deliveryId = options.deliveryId ?? randomUUID()
  const signature = options.signature === undefined ? await sign(secret, body) : options.signature
  const installationId = (payload as { installation?: { id?: number } } | null)?.installation?.id
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/fake",
    "x-github-event": event,
    "x-github-delivery": deliveryId,
    "x-github-hook-id": "123456789",
    ...(installationId !== undefined
      ? { "x-github-hook-installation-target-type": "integration", "x-github-hook-installation-target-id": "1" }
      : { "x-github-hook-installation-target-type": "repository", "x-github-hook-installation-target-id": "1" }),
    ...(signature !== null ? { "x-hub-signature-256": signature } : {})
  }
  const res = await fetch(url, { method: "POST", headers, body })
  return { status: res.status, body: await res.text(), deliveryId }
}

export interface PayloadOverrides {
  /** "owner/name": repository.full_name, name, owner.login (and organization.login). */
  readonly repo?: string
  /** Commit sha: head_sha, after, head_commit.id, check_suite/check_run/workflow_run/deployment sha fields. */
  readonly sha?: string
  /** Branch, as "main" or "refs/heads/main": push ref, head_branch fields, deployment.ref. */
  readonly ref?: string
  /** sender.login (and pusher.name on push). */
  readonly sender?: string
  /** installation.id; null removes installation (a repository hook's delivery). */
  readonly installationId?: number | null
  /** push: pick a branch-deletion example (after = 40 zeros, head_commit null). */
  readonly deleted?: boolean
  /** check_run.requested_action identifier (e.g. "deploy", "prepare"). */
  readonly requestedAction?: string
  /** Only examples this accepts, e.g. the Deployment that a workflow run created. */
  readonly pick?: (example: Record<string, unknown>) => boolean
  /** Deep-merged last, for anything else (objects merge, other values replace). */
  readonly merge?: Record<string, unknown>
}

const require = createRequire(import.meta.url)
let examples: ReadonlyArray<WebhookDefinition> | undefined
const allExamples = (): ReadonlyArray<
  WebhookDefinition
> => (examples ??= require("@octokit/webhooks-examples/api.github.com/index.json") as ReadonlyArray<WebhookDefinition>)

type Json = Record<string, unknown>
const isObject = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x)
const obj = (parent: Json, key: string): Json | undefined => (isObject(parent[key]) ? (parent[key] as Json) : undefined)

const deepMerge = (target: Json, patch: Json): Json => {
  for (const [k, v] of Object.entries(patch)) {
    const current = target[k]
    target[k] = isObject(v) && isObject(current) ? deepMerge(current, v) : v
  }
  return target
}

/**
 * A real example payload for `event` (and `action`), adjusted by `overrides`. Throws when
 * the package has no such example. Examples that came without `installation` get one
 * unless `installationId` is null.
 */
export const examplePayload = (event: string, action?: string, overrides: PayloadOverrides = {}): Json => {
  const def = allExamples().find((d) => d.name === event)
  if (!def) throw new Error(`@octokit/webhooks-examples has no event ${event}`)
  const candidates = (def.examples as ReadonlyArray<Json>).filter((e) =>
    (action === undefined || e["action"] === action) && (overrides.pick?.(e) ?? true)
  )
  // Prefer an example delivered to an App (what Sacar receives) and, for push, a branch
  // push that deletes nothing unless `deleted` asks for a deletion.
  const score = (e: Json) =>
    ((e["deleted"] === true) === (overrides.deleted ?? false) ? 4 : 0) +
    (typeof e["ref"] !== "string" || e["ref"].startsWith("refs/heads/") ? 2 : 0) +
    (e["installation"] !== undefined ? 1 : 0)
  const chosen = [...candidates].sort((a, b) => score(b) - score(a))[0]
  if (!chosen) throw new Error(`@octokit/webhooks-examples has no ${event} example with action ${action}`)
  const p = structuredClone(chosen)

  if (overrides.repo !== undefined) {
    const [owner, name] = overrides.repo.split("/")
    if (!owner || !name) throw new Error(`repo must be "owner/name", got ${overrides.repo}`)
    const repository = obj(p, "repository")
    if (repository) {
      repository["full_name"] = overrides.repo
      repository["name"] = name
      const o = obj(repository, "owner")
      if (o) {
        o["login"] = owner
        if ("name" in o) o["name"] = owner
      }
    }
    const org = obj(p, "organization")
    if (org) org["login"] = owner
    // A run of the repository's own commit: its head repository is the repository.
    const headRepo = obj(p, "workflow_run") && obj(obj(p, "workflow_run")!, "head_repository")
    if (headRepo) headRepo["full_name"] = overrides.repo
  }

  if (overrides.sha !== undefined) {
    const sha = overrides.sha
    if (event === "push" && p["deleted"] !== true) {
      p["after"] = sha
      const head = obj(p, "head_commit")
      if (head) head["id"] = sha
    }
    for (const key of ["check_suite", "workflow_run"]) {
      const o = obj(p, key)
      if (o) {
        o["head_sha"] = sha
        if ("after" in o) o["after"] = sha
      }
    }
    const run = obj(p, "check_run")
    if (run) {
      run["head_sha"] = sha
      const suite = obj(run, "check_suite")
      if (suite) {
        suite["head_sha"] = sha
        if ("after" in suite) suite["after"] = sha
      }
    }
    const deployment = obj(p, "deployment")
    if (deployment) deployment["sha"] = sha
  }

  if (overrides.ref !== undefined) {
    const branch = overrides.ref.replace(/^refs\/heads\//, "")
    if (event === "push") p["ref"] = `refs/heads/${branch}`
    for (const key of ["check_suite", "workflow_run"]) {
      const o = obj(p, key)
      if (o) o["head_branch"] = branch
    }
    const suite = obj(p, "check_run") && obj(obj(p, "check_run")!, "check_suite")
    if (suite) suite["head_branch"] = branch
    const deployment = obj(p, "deployment")
    if (deployment) deployment["ref"] = branch
  }

  if (overrides.sender !== undefined) {
    const sender = obj(p, "sender")
    if (sender) sender["login"] = overrides.sender
    const pusher = obj(p, "pusher")
    if (pusher) pusher["name"] = overrides.sender
  }

  if (overrides.installationId === null) delete p["installation"]
  else if (event !== "ping") {
    const id = overrides.installationId ?? (obj(p, "installation")?.["id"] as number | undefined) ?? 1
    p["installation"] = { ...obj(p, "installation"), id, node_id: `MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u${id}` }
  }

  if (overrides.requestedAction !== undefined) p["requested_action"] = { identifier: overrides.requestedAction }

  // The docs-derived workflow_run examples lack `path`, which the schema requires.
  const wr = obj(p, "workflow_run")
  if (wr && typeof wr["path"] !== "string") wr["path"] = ".github/workflows/build.yml"

  return overrides.merge ? deepMerge(p, overrides.merge) : p
}
