/**
 * What operators do, as Effects over Consul: each writes exactly the documents of
 * the contract, so anything here can also be done with `consul kv put`. The CLI is
 * a thin layer of argument parsing over these.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { nowIso } from "../common/time.ts"
import { Consul } from "../consul/consul.ts"
import type { ConsulError } from "../consul/consul.ts"
import { checkArtifactUrl, expandArtifact } from "../spec/artifact.ts"
import { decodeDocument, explain } from "../spec/decode.ts"
import { AppConfig, LockDoc, lockInForce, PinDoc, ReleaseSpec } from "../spec/documents.ts"
import type { Keys } from "../spec/keys.ts"
import { shortSha } from "../spec/names.ts"
import { type AppState, readApp } from "../state/snapshot.ts"
import { createRelease, putAppConfig, putLock, putPin, requestDeploy } from "../state/writes.ts"
import { InvalidRequest, RequestRefused } from "./errors.ts"
import { resolveSha } from "./sha.ts"

type Encoded<A> = { readonly [K in keyof A]?: unknown }

/**
 * Validates `value` against `schema` (defaults applied). Unlike a reader, the CLI
 * refuses fields the schema does not know: a typo such as "maxParalel" carried into
 * KV would otherwise be ignored by every node, silently.
 */
const validated = <S extends Parameters<typeof decodeDocument>[0]>(
  schema: S,
  what: string,
  key: string,
  value: Encoded<S["Type"]>
): Effect.Effect<S["Type"], RequestRefused> =>
  Effect.gen(function*() {
    const decoded = decodeDocument(schema, what, key, JSON.stringify(value))
    if (Result.isFailure(decoded)) return yield* new RequestRefused({ message: decoded.failure.message })
    const strict = Schema.decodeUnknownResult(schema)(value, { errors: "all", onExcessProperty: "error" })
    if (Result.isFailure(strict)) {
      return yield* new RequestRefused({
        message: `${key}: ${
          explain(what, strict.failure, value)
        }; remove the field with \`consul kv put\` and run again`
      })
    }
    return decoded.success
  })

/** Writes `value` once `validated`, through `put` (a writer of state/writes.ts); refused when the key changed meanwhile. */
const writeValidated = <S extends Parameters<typeof decodeDocument>[0]>(
  schema: S,
  what: string,
  key: string,
  value: Encoded<S["Type"]>,
  put: (doc: S["Type"]) => Effect.Effect<boolean, ConsulError, Consul>
): Effect.Effect<S["Type"], ConsulError | RequestRefused, Consul> =>
  Effect.gen(function*() {
    const doc = yield* validated(schema, what, key, value)
    if (!(yield* put(doc)))
      return yield* new RequestRefused({ message: `${key} changed while it was being written; run the command again` })
    return doc
  })

const requireApp = (keys: Keys, app: string) =>
  Effect.gen(function*() {
    const snapshot = yield* readApp(keys, app)
    if (snapshot.config === undefined) {
      const bad = snapshot.problems.find((p) => p.startsWith(keys.config(app)))
      return yield* new RequestRefused({
        message: bad ?? `app ${app} does not exist: create it with \`sacar app set ${app} --artifact URL\``
      })
    }
    return snapshot
  })

/** The full sha a typed prefix names among the app's releases, deploy target and node records. */
export const findSha = (keys: Keys, app: string, text: string) =>
  Effect.gen(function*() {
    const snapshot = yield* requireApp(keys, app)
    const resolved = resolveSha(snapshot, text)
    if (Result.isFailure(resolved)) return yield* new RequestRefused({ message: resolved.failure })
    return resolved.success
  })

export type AppPatch = { -readonly [K in keyof AppConfig]?: AppConfig[K] }

/** Creates the app or changes the given fields of its config, keeping the rest. */
export const setApp = (keys: Keys, app: string, patch: AppPatch) =>
  Effect.gen(function*() {
    const consul = yield* Consul
    const key = keys.config(app)
    const existing = (yield* consul.get(key)).value
    let base: Record<string, unknown> = {}
    if (existing?.value) {
      try {
        base = JSON.parse(existing.value) as Record<string, unknown>
      } catch {
        // A config that is not JSON is replaced by the fields given now; the old text is in the error below if they are not enough.
      }
    }
    const created = existing === undefined
    const config = yield* writeValidated(
      AppConfig,
      "AppConfig",
      key,
      { ...base, ...patch },
      (config) => putAppConfig(keys, app, config, existing?.modifyIndex ?? 0)
    )
    return { created, config }
  })

/**
 * `sacar release`: writes the ReleaseSpec of `sha`, replacing one that exists (so
 * nodes whose attempt failed try again). With --sha256 alone, the checksum is of the
 * tarball the app's template names.
 */
export const releaseSha = (
  keys: Keys,
  app: string,
  sha: string,
  options: { artifact?: string; sha256?: string; by: string }
) =>
  Effect.gen(function*() {
    const snapshot = yield* requireApp(keys, app)
    const template = snapshot.config?.artifact
    if (options.sha256 !== undefined && options.artifact === undefined && template === undefined) {
      return yield* new InvalidRequest({
        message: `${app} has no artifact template; give --artifact URL with --sha256`
      })
    }
    const url = options.artifact ??
      (options.sha256 !== undefined && template !== undefined ? expandArtifact(template, app, sha) : undefined)
    if (url !== undefined) {
      const checked = checkArtifactUrl(url)
      if (Result.isFailure(checked)) return yield* new RequestRefused({ message: checked.failure.message })
    }
    const artifact = url === undefined
      ? undefined
      : options.sha256 === undefined
      ? url
      : { url, sha256: options.sha256 }
    const spec = yield* validated(ReleaseSpec, "ReleaseSpec", keys.release(app, sha), {
      ...(artifact !== undefined ? { artifact } : {}),
      createdAt: yield* nowIso,
      source: "cli",
      requestedBy: options.by
    })
    const written = yield* createRelease(keys, app, sha, spec, { replace: true })
    return { existed: written !== "created", spec }
  })

/** `sacar deploy`: refused while the app is locked, unless `force`. */
export const deploySha = (
  keys: Keys,
  app: string,
  sha: string,
  options: { by: string; force: boolean; reason?: string }
) =>
  Effect.gen(function*() {
    const snapshot = yield* requireApp(keys, app)
    const outcome = yield* requestDeploy(keys, app, {
      sha,
      requestedBy: options.by,
      force: options.force,
      reason: options.reason
    })
    if (outcome.kind !== "deployed") {
      const reason = outcome.kind === "refused" ? outcome.reason : `${app}: the deploy was not written`
      return yield* new RequestRefused({
        message: `${reason}; \`sacar unlock ${app}\` lifts it, \`sacar deploy --force\` deploys through it`
      })
    }
    const prepared = snapshot.releases.some((r) => r.sha === sha)
    return { generation: outcome.generation, prepared, snapshot }
  })

/**
 * The release to roll back to. When the deploy target went live somewhere, the one
 * the nodes had live before it: they record it as `previous`. When it went live
 * nowhere (it failed in pre-deploy or on the first node), what the nodes still have
 * live. Either way the most common answer among the nodes wins, so one lagging node
 * cannot pick it.
 */
export const rollbackTarget = (snapshot: AppState): Result.Result<string, string> => {
  const target = snapshot.deploy?.spec.sha
  if (target === undefined)
    return Result.fail(`${snapshot.app} has never been deployed, so there is nothing to roll back to`)
  const statuses = Object.values(snapshot.statuses)
  const mostCommon = (shas: ReadonlyArray<string | null | undefined>): string | undefined => {
    const votes = new Map<string, number>()
    for (const sha of shas) if (sha && sha !== target) votes.set(sha, (votes.get(sha) ?? 0) + 1)
    return [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0]
  }
  const before = mostCommon(statuses.filter((s) => s.current === target).map((s) => s.previous))
    ?? mostCommon(statuses.map((s) => s.current))
  if (before === undefined) {
    return Result.fail(
      `no node of ${snapshot.app} has or had a release live other than ${
        shortSha(target)
      }; deploy a sha explicitly with \`sacar deploy\``
    )
  }
  return Result.succeed(before)
}

/** Deploys the previously live release and pins the app there (auto-deploy pauses). */
export const rollback = (keys: Keys, app: string, by: string) =>
  Effect.gen(function*() {
    const snapshot = yield* requireApp(keys, app)
    const target = rollbackTarget(snapshot)
    if (Result.isFailure(target)) return yield* new RequestRefused({ message: target.failure })
    const sha = target.success
    yield* writeValidated(
      PinDoc,
      "PinDoc",
      keys.pin(app),
      { sha, by, reason: "rollback", at: yield* nowIso },
      (pin) => putPin(keys, app, pin)
    )
    // A rollback restores a known-good state, so it goes through a lock, on the record.
    yield* requestDeploy(keys, app, { sha, requestedBy: by, force: true, reason: "rollback" })
    return { sha, from: snapshot.deploy?.spec.sha }
  })

/**
 * Locks the app. A lock in force that someone else holds is theirs, with their reason:
 * replacing it takes `force`, and the answer says whose lock was replaced.
 */
export const lockApp = (
  keys: Keys,
  app: string,
  lock: { by: string; reason: string; until?: string },
  options: { force: boolean } = { force: false }
) =>
  Effect.gen(function*() {
    const snapshot = yield* requireApp(keys, app)
    const held = snapshot.lock
    const now = yield* Clock.currentTimeMillis
    const theirs = held !== undefined && held.by !== lock.by && lockInForce(held, new Date(now)) ? held : undefined
    if (theirs !== undefined && !options.force) {
      return yield* new RequestRefused({
        message: `${app} is already locked by ${theirs.by}: ${theirs.reason}${
          theirs.until ? ` (until ${theirs.until})` : ""
        }; \`sacar lock ${app} -m REASON --force\` replaces their lock and reason`
      })
    }
    const written = yield* writeValidated(
      LockDoc,
      "LockDoc",
      keys.lock(app),
      { ...lock, at: new Date(now).toISOString() },
      (doc) => putLock(keys, app, doc)
    )
    return { lock: written, replaced: theirs }
  })
