/**
 * Every JSON document Sacar keeps in Consul KV, defined once. Types are derived from
 * the schemas; decoding applies the defaults the contract promises, so a minimal
 * document written by hand with `consul kv put` means the same as a full one.
 *
 * Decoding ignores unknown fields on purpose: an operator's extra note in a document
 * must not stop a deploy, and an older reconciler must accept a newer controller's
 * documents during a rolling upgrade.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { DurationString } from "./duration.ts"
import { NodeName, Sha } from "./names.ts"

const defaultTo = <S extends Schema.Top & { readonly "~type.make.in": unknown }>(value: S["Type"]) =>
  Schema.withDecodingDefaultKey<S>(Effect.succeed(value as never))

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const Timestamp = Schema.String.check(
  Schema.makeFilter((s: string) =>
    Number.isNaN(Date.parse(s))
      ? `expected an ISO 8601 time such as "2026-11-27T09:00:00Z", got ${JSON.stringify(s)}`
      : undefined
  )
)
const RepoName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { message: "a repository is \"owner/name\"" })
)
const NodeGlob = Schema.String.check(Schema.isMinLength(1))

/** `sacar/<app>/config`: the app exists and how it deploys. */
export const AppConfig = Schema.Struct({
  repo: Schema.optionalKey(RepoName),
  branch: Schema.String.pipe(defaultTo("main")),
  artifact: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1))),
  nodes: Schema.Array(NodeGlob).pipe(defaultTo(["*"])),
  autoDeploy: Schema.Boolean.pipe(defaultTo(false)),
  keepReleases: PositiveInt.pipe(defaultTo(5)),
  maxParallel: PositiveInt.pipe(defaultTo(1)),
  prepareTimeout: DurationString.pipe(defaultTo("15m")),
  deployTimeout: DurationString.pipe(defaultTo("5m")),
  environment: Schema.String.check(Schema.isMinLength(1)).pipe(defaultTo("production")),
  buildWorkflow: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1))),
  /** URL prefixes `POST /v1/apps/<app>/releases` may name besides the template's own. */
  artifactSources: Schema.optionalKey(Schema.Array(Schema.String.check(Schema.isMinLength(1)))),
  /** A GitHub Deployment created by a person in `environment` is a deploy request (default: never). */
  githubDeployments: Schema.Boolean.pipe(defaultTo(false))
})
export type AppConfig = typeof AppConfig.Type

export const ArtifactRef = Schema.Struct({
  url: Schema.String.check(Schema.isMinLength(1)),
  sha256: Schema.optionalKey(
    Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/, { message: "a sha256 is 64 lowercase hex characters" }))
  )
})
export type ArtifactRef = typeof ArtifactRef.Type

/** `sacar/<app>/releases/<sha>`: prepare this release on every node of the app. */
export const ReleaseSpec = Schema.Struct({
  artifact: Schema.optionalKey(Schema.Union([Schema.String.check(Schema.isMinLength(1)), ArtifactRef])),
  ref: Schema.optionalKey(Schema.String),
  createdAt: Schema.optionalKey(Timestamp),
  source: Schema.optionalKey(Schema.String),
  requestedBy: Schema.optionalKey(Schema.String)
})
export type ReleaseSpec = typeof ReleaseSpec.Type

/** `sacar/<app>/deploy`: this release is live on every node. Each write is a new generation. */
export const DeploySpec = Schema.Struct({
  sha: Sha,
  requestedBy: Schema.optionalKey(Schema.String),
  requestedAt: Schema.optionalKey(Timestamp),
  /** Set by `sacar deploy --force` and `sacar rollback`: deployed through a lock, on the record. */
  force: Schema.optionalKey(Schema.Boolean),
  reason: Schema.optionalKey(Schema.String)
})
export type DeploySpec = typeof DeploySpec.Type

export const RELEASE_PHASES = [
  "pending",
  "download",
  "extract",
  "lock",
  "venv",
  "install",
  "prepare",
  "ready",
  "failed"
] as const
export const ReleasePhase = Schema.Literals(RELEASE_PHASES)
export type ReleasePhase = typeof ReleasePhase.Type

export const STEP_NAMES = ["download", "extract", "lock", "venv", "install", "prepare"] as const
export const StepName = Schema.Literals(STEP_NAMES)
export type StepName = typeof StepName.Type

export const DEPLOY_PHASES = ["waiting", "predeploy", "deploying", "live", "failed"] as const
export const DeployPhase = Schema.Literals(DEPLOY_PHASES)
export type DeployPhase = typeof DeployPhase.Type

export const StepTiming = Schema.Struct({
  ms: Schema.Number,
  /** On `install`: the release on this node whose installed dependencies were copied instead of running pip. */
  reusedFrom: Schema.optionalKey(Sha)
})

export const ReleaseStatus = Schema.Struct({
  phase: ReleasePhase,
  message: Schema.optionalKey(Schema.String),
  attempt: Schema.Int.pipe(defaultTo(1)),
  /** The ReleaseSpec's ModifyIndex this attempt worked from; a rewrite of the spec retries. */
  specIndex: Schema.optionalKey(Schema.Number),
  startedAt: Schema.optionalKey(Schema.String),
  finishedAt: Schema.optionalKey(Schema.String),
  steps: Schema.Record(Schema.String, StepTiming).pipe(defaultTo({})),
  log: Schema.optionalKey(Schema.String)
})
export type ReleaseStatus = typeof ReleaseStatus.Type

export const DeployStatus = Schema.Struct({
  generation: Schema.Number,
  sha: Sha,
  phase: DeployPhase,
  message: Schema.optionalKey(Schema.String),
  startedAt: Schema.optionalKey(Schema.String),
  finishedAt: Schema.optionalKey(Schema.String),
  log: Schema.optionalKey(Schema.String)
})
export type DeployStatus = typeof DeployStatus.Type

/** `sacar/<app>/status/<node>`: what one node observed, written only by that node. */
export const NodeStatus = Schema.Struct({
  node: NodeName,
  updatedAt: Schema.String,
  releases: Schema.Record(Schema.String, ReleaseStatus).pipe(defaultTo({})),
  current: Schema.NullOr(Sha).pipe(defaultTo(null)),
  /** The release that was live before `current`; retention keeps it for rollback. */
  previous: Schema.optionalKey(Schema.NullOr(Sha)),
  deploy: Schema.NullOr(DeployStatus).pipe(defaultTo(null)),
  error: Schema.optionalKey(Schema.String)
})
export type NodeStatus = typeof NodeStatus.Type

/** `sacar/_nodes/<node>`: the node is alive; held by its session. */
export const NodeRegistration = Schema.Struct({
  node: NodeName,
  version: Schema.String,
  startedAt: Schema.String,
  root: Schema.String,
  pythons: Schema.Array(Schema.String).pipe(defaultTo([]))
})
export type NodeRegistration = typeof NodeRegistration.Type

/** `sacar/<app>/lock`: deploys frozen. */
export const LockDoc = Schema.Struct({
  by: Schema.String,
  reason: Schema.String,
  at: Timestamp,
  until: Schema.optionalKey(Timestamp)
})
export type LockDoc = typeof LockDoc.Type

/** `sacar/<app>/pin`: auto-deploy paused at this release until unpinned. */
export const PinDoc = Schema.Struct({
  sha: Sha,
  by: Schema.String,
  reason: Schema.String,
  at: Timestamp
})
export type PinDoc = typeof PinDoc.Type

/** A lock is in force when it has no end or its end is still ahead. */
export const lockInForce = (lock: LockDoc, now: Date): boolean =>
  lock.until === undefined || Date.parse(lock.until) > now.getTime()
