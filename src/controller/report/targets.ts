/**
 * What the reporter reports on, derived from one app of a Snapshot: for a repo-backed
 * app, each commit that has a GitHubRecord, with the render input for its check run.
 * Pure; the loop adds only the clock and its memory of when releases were first seen.
 */
import { lockInForce } from "../../spec/documents.ts"
import type { AppConfig, ReleaseSpec } from "../../spec/documents.ts"
import type { GitHubRecord } from "../../spec/github-record.ts"
import { deployView, expectedNodes, releaseView } from "./release-view.ts"
import type { DeployView } from "./release-view.ts"
import type { RenderInput } from "./render.ts"
import type { AppSnapshot, Versioned } from "./snapshot.ts"

export interface CommitTarget {
  readonly app: string
  readonly sha: string
  readonly config: AppConfig
  readonly record: Versioned<GitHubRecord>
  readonly input: RenderInput
}

/** `refs/heads/main` -> `main`; tags and bare shas name no branch. */
export const branchOfRef = (ref: string | undefined): string | undefined =>
  ref !== undefined && ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : undefined

/** The commit's branch: what the webhook recorded, else the ReleaseSpec's ref. */
export const branchOf = (record: GitHubRecord | undefined, release: ReleaseSpec | undefined): string | undefined =>
  record?.branch ?? branchOfRef(record?.ref) ?? branchOfRef(release?.ref)

/**
 * When preparing started, for `timed_out`: the ReleaseSpec's createdAt, else when this
 * leader first saw this version of it (`firstSeen`, keyed by app, sha and ModifyIndex).
 */
export const preparingSince = (
  app: string,
  sha: string,
  release: Versioned<ReleaseSpec> | undefined,
  firstSeen: (key: string) => number
): number | undefined => {
  if (release === undefined) return undefined
  const created = release.doc.createdAt === undefined ? NaN : Date.parse(release.doc.createdAt)
  return Number.isFinite(created) ? created : firstSeen(`${app}/${sha}/${release.modifyIndex}`)
}

export interface AppFacts {
  readonly expected: ReadonlyArray<string>
  readonly deploy: DeployView | undefined
}

export const appFacts = (app: AppSnapshot, config: AppConfig, nodes: ReadonlySet<string>): AppFacts => {
  const expected = expectedNodes(config, nodes)
  return { expected, deploy: deployView(app, expected) }
}

/** The commits of one app that have a GitHubRecord, each with its render input. */
export const commitTargets = (
  app: AppSnapshot,
  nodes: ReadonlySet<string>,
  now: number,
  publicUrl: string | undefined,
  firstSeen: (key: string) => number,
  artifactWaitMs: number
): ReadonlyArray<CommitTarget> => {
  const out: CommitTarget[] = []
  const config = app.config
  if (config === undefined || config.repo === undefined) return out
  const facts = appFacts(app, config, nodes)
  const lock = app.lock !== undefined && lockInForce(app.lock, new Date(now)) ? app.lock : undefined
  for (const [sha, record] of app.github) {
    const release = app.releases.get(sha)
    const deploy = facts.deploy?.sha === sha ? facts.deploy : undefined
    out.push({
      app: app.app,
      sha,
      config,
      record,
      input: {
        app: app.app,
        sha,
        config,
        branch: branchOf(record.doc, release?.doc),
        hasRelease: release !== undefined || deploy !== undefined,
        release: releaseView(sha, facts.expected, app.statuses),
        startedAt: preparingSince(app.app, sha, release, firstSeen),
        deploy,
        lock,
        pin: app.pin,
        refused: record.doc.refused,
        autoDeployedAt: record.doc.autoDeployedAt,
        now,
        publicUrl,
        waitingSince: Date.parse(record.doc.createdAt) || undefined,
        artifactWaitMs
      }
    })
  }
  return out
}
