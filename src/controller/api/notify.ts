/**
 * `POST /v1/apps/<app>/releases`: CI says "the artifact for this commit is ready".
 * The release is created once (cas=0); sending the same notification again answers
 * 200, and a notification that names a different artifact for a commit that already
 * has a release answers 409 rather than silently changing what nodes download.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { nowIso } from "../../common/time.ts"
import { Consul } from "../../consul/consul.ts"
import { checkArtifactUrl, expandArtifact, resolveArtifact } from "../../spec/artifact.ts"
import { decodeDocument } from "../../spec/decode.ts"
import { AppConfig } from "../../spec/documents.ts"
import type { ReleaseSpec } from "../../spec/documents.ts"
import type { ArtifactRef } from "../../spec/documents.ts"
import type { Keys } from "../../spec/keys.ts"
import { isAppName, shortSha } from "../../spec/names.ts"
import { createOrReadRelease } from "../../state/writes.ts"
import { type HttpRequest, type HttpResponse, json, jsonError } from "../http/types.ts"
import type { Metrics } from "../metrics.ts"
import { artifactRefusal } from "./artifact-policy.ts"

export interface NotifyRequest {
  readonly sha: string
  readonly artifact?: string
  readonly sha256?: string
  readonly ref?: string
}

const FIELDS = new Set(["sha", "artifact", "sha256", "ref"])

/** The body, checked field by field; a string is the 400 message. */
export const parseNotifyBody = (raw: string): NotifyRequest | string => {
  let body: unknown
  try {
    body = JSON.parse(raw)
  } catch (cause) {
    return `the body is not JSON: ${
      (cause as Error).message
    }; expected {"sha": "<40 hex>", "artifact"?: URL, "sha256"?: "<64 hex>", "ref"?: "refs/heads/main"}`
  }
  if (body === null || typeof body !== "object" || Array.isArray(body))
    return "the body must be a JSON object such as {\"sha\": \"<40 hex>\"}"
  const fields = body as Record<string, unknown>
  // A typo such as "sha265" must not silently drop the checksum.
  const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k))
  if (unknown.length > 0)
    return `unknown field ${JSON.stringify(unknown[0])}; the fields are sha, artifact, sha256 and ref`
  const { sha, artifact, sha256, ref } = fields
  if (typeof sha !== "string" || !/^[0-9a-fA-F]{40}$/.test(sha)) {
    return `"sha" must be a full commit sha of 40 hex characters, got ${JSON.stringify(sha ?? null)}`
  }
  if (artifact !== undefined && (typeof artifact !== "string" || artifact === ""))
    return "\"artifact\" must be a URL string (gs://, https:// or file://)"
  if (sha256 !== undefined && (typeof sha256 !== "string" || !/^[0-9a-fA-F]{64}$/.test(sha256))) {
    return `"sha256" must be 64 hex characters, got ${JSON.stringify(sha256)}`
  }
  if (ref !== undefined && (typeof ref !== "string" || ref === ""))
    return "\"ref\" must be a non-empty string such as \"refs/heads/main\""
  return {
    sha: sha.toLowerCase(),
    ...(artifact !== undefined ? { artifact: artifact as string } : {}),
    ...(sha256 !== undefined ? { sha256: (sha256 as string).toLowerCase() } : {}),
    ...(ref !== undefined ? { ref: ref as string } : {})
  }
}

const sameArtifact = (a: ArtifactRef, b: ArtifactRef) => a.url === b.url && a.sha256 === b.sha256

const describeArtifact = (a: ArtifactRef) => (a.sha256 === undefined ? a.url : `${a.url} (sha256 ${a.sha256})`)

export interface NotifyEndpoint {
  readonly keys: Keys
  readonly metrics: Metrics
}

export const handleNotify = (
  endpoint: NotifyEndpoint,
  app: string,
  req: HttpRequest
): Effect.Effect<HttpResponse, never, Consul> =>
  Effect.gen(function*() {
    const { keys, metrics } = endpoint
    const answer = (result: string, response: HttpResponse) => {
      metrics.inc("sacar_notify_total", { result })
      return response
    }
    if (!isAppName(app))
      return answer("not_found", jsonError(404, `no app ${JSON.stringify(app)}: not a valid app name`))
    const parsed = parseNotifyBody(req.body.toString("utf8"))
    if (typeof parsed === "string")
      return answer("bad_request", jsonError(400, parsed))

    const consul = yield* Consul
    const configKey = keys.config(app)
    const configEntry = (yield* consul.get(configKey)).value
    if (configEntry === undefined) {
      return answer(
        "not_found",
        jsonError(
          404,
          `no app ${JSON.stringify(app)}: ${configKey} does not exist; create it with sacar app set ${app}`
        )
      )
    }
    const config = decodeDocument(AppConfig, "AppConfig", configKey, configEntry.value)
    const template = Result.isSuccess(config) ? config.success.artifact : undefined
    const url = parsed.artifact ?? (template === undefined ? undefined : expandArtifact(template, app, parsed.sha))
    if (url === undefined) {
      const why = Result.isFailure(config) ? config.failure.message : `${configKey} has no "artifact" template`
      return answer("bad_request", jsonError(400, `no "artifact" in the request and none to derive: ${why}`))
    }
    const checked = checkArtifactUrl(expandArtifact(url, app, parsed.sha))
    if (Result.isFailure(checked))
      return answer("bad_request", jsonError(400, checked.failure.message))
    const refusal = artifactRefusal(
      app,
      parsed.sha,
      Result.isSuccess(config) ? config.success : undefined,
      checked.success,
      parsed.sha256
    )
    if (refusal !== undefined) return answer("bad_request", jsonError(400, refusal))
    const wanted: ArtifactRef = parsed.sha256 === undefined
      ? { url: checked.success }
      : { url: checked.success, sha256: parsed.sha256 }
    const spec: ReleaseSpec = {
      artifact: parsed.sha256 === undefined ? wanted.url : wanted,
      ...(parsed.ref !== undefined ? { ref: parsed.ref } : {}),
      createdAt: yield* nowIso,
      source: "notify"
    }
    const key = keys.release(app, parsed.sha)
    const short = shortSha(parsed.sha)
    const written = yield* createOrReadRelease(keys, app, parsed.sha, spec)
    if (written._tag === "Churning")
      return answer("error", jsonError(503, `release ${short} of ${app} kept changing while it was written; try again`))
    if (written._tag === "Created") {
      yield* Effect.logInfo("release created by notify", { app, sha: parsed.sha })
      return answer("created", json(201, { app, sha: parsed.sha, key, created: true, artifact: wanted }))
    }
    const decoded = written.existing
    if (Result.isFailure(decoded)) {
      return answer(
        "conflict",
        jsonError(409, `release ${short} exists but ${decoded.failure.message}; delete ${key} to replace it`)
      )
    }
    const have = resolveArtifact(
      app,
      parsed.sha,
      decoded.success,
      Result.isSuccess(config) ? config.success : undefined
    )
    if (Result.isSuccess(have) && sameArtifact(have.success, wanted)) {
      return answer("exists", json(200, { app, sha: parsed.sha, key, created: false, artifact: wanted }))
    }
    const haveText = Result.isSuccess(have) ? describeArtifact(have.success) : have.failure.message
    return answer(
      "conflict",
      jsonError(
        409,
        `release ${short} of ${app} already exists with a different artifact: ${haveText}; delete ${key} first to replace it`,
        {
          existing: Result.isSuccess(have) ? have.success : null,
          requested: wanted
        }
      )
    )
  }).pipe(
    Effect.catchTags({
      ConsulUnavailable: (e) =>
        Effect.succeed(jsonError(503, `Consul is unavailable (${e.message}); nothing was written`)),
      ConsulRequestError: (e) =>
        Effect.succeed(jsonError(503, `Consul refused ${e.operation} (${e.status}): ${e.message}`))
    })
  )
