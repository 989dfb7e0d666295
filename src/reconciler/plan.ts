/**
 * What the reconciler does next, decided without I/O: from what Consul says is
 * wanted and what this node observes (its disk, its own last status, the work in
 * flight), a list of actions. The loop re-reads both sides on every wake-up and calls
 * this again, so a missed or duplicated wake-up is harmless and every decision is
 * made from the whole picture ("level-based").
 *
 * The rules, in short:
 * - an app is served when its last good AppConfig's `nodes` globs match this node;
 * - every ReleaseSpec, and the deploy target when it has none, is a wanted release;
 * - a wanted release that is ready on disk is never touched again; one that failed is
 *   retried only when its spec is rewritten (a new ModifyIndex); anything else is
 *   prepared, newest first, at most `concurrency` at once on the node;
 * - work for a release that is no longer wanted is cancelled and its directory
 *   removed; on disk the node keeps what is wanted plus `current` and `previous`;
 * - each deploy generation runs once to `live` or `failed`; one interrupted by a crash
 *   (its status still says waiting, predeploy or deploying) runs again; a node with no
 *   record of any deploy whose `current` already is the target records it live as is.
 */
import { lockInForce } from "../spec/documents.ts"
import type { AppConfig, LockDoc, NodeStatus, ReleaseSpec } from "../spec/documents.ts"
import { matchesAny } from "../spec/glob.ts"
import { shortSha } from "../spec/names.ts"
import { type DatedRelease, newestFirst } from "../spec/tree.ts"

// ---------------------------------------------------------------------------------
// Desired state (from Consul)

export interface WantedRelease {
  readonly sha: string
  /** The ReleaseSpec key's ModifyIndex; for a deploy target without a spec, the deploy generation. */
  readonly specIndex: number
  /** Undefined when the value at the key is not a valid ReleaseSpec (see `specError`). */
  readonly spec: ReleaseSpec | undefined
  /** Why the spec does not decode, naming the key. */
  readonly specError?: string
}

export interface WantedDeploy {
  readonly generation: number
  readonly sha: string
  /** The DeploySpec says `force`: it goes through a lock (`sacar deploy --force`, rollback). */
  readonly force?: boolean
}

/** `<app>/lock` as read: a LockDoc, or why the value there does not decode. */
export type AppLock = { readonly doc: LockDoc } | { readonly unreadable: string }

export interface AppDesired {
  readonly app: string
  /** The last AppConfig that decoded; undefined when none ever did (or the key is gone). */
  readonly config: AppConfig | undefined
  /** Whether the config key exists at all. */
  readonly configPresent: boolean
  /** Problems with the app's own documents (AppConfig, DeploySpec), for the status `error`. */
  readonly errors: ReadonlyArray<string>
  /** ReleaseSpecs by sha. */
  readonly releases: ReadonlyMap<string, WantedRelease>
  readonly deploy: WantedDeploy | undefined
}

// ---------------------------------------------------------------------------------
// Observed state (this node)

export interface DiskRelease {
  /** Every preparation step completed (the release's ready marker is there). */
  readonly ready: boolean
}

export interface AppDisk {
  readonly releases: ReadonlyMap<string, DiskRelease>
  readonly current: string | null
  readonly previous: string | null
}

export interface Preparing {
  readonly specIndex: number
  /** Interruption already asked for; the fiber is winding down. */
  readonly cancelling: boolean
}

/** A release whose last attempt failed in a way that may heal: it waits, holding no slot. */
export interface Retrying {
  readonly specIndex: number
  /** When it may be prepared again (ms since the epoch). */
  readonly at: number
}

export interface AppObserved {
  readonly disk: AppDisk
  /** This node's status for the app as last recorded (what the status writer holds). */
  readonly status: NodeStatus
  readonly preparing: ReadonlyMap<string, Preparing>
  /** Releases waiting to try again, by sha. */
  readonly retrying?: ReadonlyMap<string, Retrying>
  /** The deploy fiber in flight, if any; `cancelling` while it is being stopped. */
  readonly deploying: (WantedDeploy & { readonly cancelling?: boolean }) | undefined
}

export interface NodeDesired {
  readonly node: string
  /** SACAR_CONCURRENCY: releases prepared at once on this node, all apps together. */
  readonly concurrency: number
  readonly apps: ReadonlyMap<string, AppDesired>
  /** The time of this pass (ms since the epoch), for releases waiting to try again. */
  readonly now: number
}

export interface NodeObserved {
  /** Apps this node currently serves, with what it observes for each. */
  readonly apps: ReadonlyMap<string, AppObserved>
}

// ---------------------------------------------------------------------------------
// Actions

export type Action =
  /** Begin serving an app: load its status, start its status writer. */
  | { readonly _tag: "Serve"; readonly app: string }
  /** Stop serving: interrupt its work and withdraw this node's status key. */
  | { readonly _tag: "Unserve"; readonly app: string; readonly reason: string }
  | { readonly _tag: "SetError"; readonly app: string; readonly error: string | undefined }
  | {
    readonly _tag: "SetLinks"
    readonly app: string
    readonly current: string | null
    readonly previous: string | null
  }
  | {
    readonly _tag: "Prepare"
    readonly app: string
    readonly sha: string
    readonly specIndex: number
    readonly attempt: number
    readonly spec: ReleaseSpec
  }
  /** Wanted but no slot free yet: show it as pending. */
  | {
    readonly _tag: "Queue"
    readonly app: string
    readonly sha: string
    readonly specIndex: number
    readonly attempt: number
  }
  /** Ready on disk but not recorded so (a status lost or a restart after the last write). */
  | { readonly _tag: "AdoptReady"; readonly app: string; readonly sha: string; readonly specIndex: number }
  | {
    readonly _tag: "FailRelease"
    readonly app: string
    readonly sha: string
    readonly specIndex: number
    readonly attempt: number
    readonly message: string
  }
  /** Interrupt the preparation of a release no longer wanted, then remove its directory. */
  | { readonly _tag: "Cancel"; readonly app: string; readonly sha: string }
  | { readonly _tag: "RemoveRelease"; readonly app: string; readonly sha: string }
  /** Drop the details (log tail, step times) of older failures from the status, keeping it small. */
  | { readonly _tag: "CompactFailures"; readonly app: string; readonly shas: ReadonlyArray<string> }
  /** Drop a release's entry from the status: not wanted and not on disk any more. */
  | { readonly _tag: "ForgetRelease"; readonly app: string; readonly sha: string }
  | { readonly _tag: "StartDeploy"; readonly app: string; readonly generation: number; readonly sha: string }
  /** The target is already live in `current` and this node has no record of the deploy (it serves the app again): record it live, run nothing. */
  | { readonly _tag: "AdoptLive"; readonly app: string; readonly generation: number; readonly sha: string }
  | { readonly _tag: "CancelDeploy"; readonly app: string; readonly generation: number; readonly reason: string }
  | {
    readonly _tag: "DeployWaiting"
    readonly app: string
    readonly generation: number
    readonly sha: string
    readonly message: string
  }
  | {
    readonly _tag: "FailDeploy"
    readonly app: string
    readonly generation: number
    readonly sha: string
    readonly message: string
  }

// ---------------------------------------------------------------------------------
// Serving

/** Whether this node serves the app: its last good config names it, or (no config has
 * ever decoded) it exists with an error every node must report. */
export const serves = (node: string, desired: AppDesired): boolean => {
  if (desired.config !== undefined) return matchesAny(node, desired.config.nodes)
  return desired.configPresent && desired.errors.length > 0
}

// ---------------------------------------------------------------------------------
// Releases

/** The releases the app wants: every ReleaseSpec, plus the deploy target if it has none. */
export const wantedReleases = (desired: AppDesired): ReadonlyMap<string, WantedRelease> => {
  const deploy = desired.deploy
  if (deploy === undefined || desired.releases.has(deploy.sha)) return desired.releases
  const all = new Map(desired.releases)
  all.set(deploy.sha, { sha: deploy.sha, specIndex: deploy.generation, spec: {} })
  return all
}

interface Candidate {
  readonly app: string
  readonly release: WantedRelease
  readonly spec: ReleaseSpec
  readonly attempt: number
  /** The deploy target goes first: a deploy is waiting for it. */
  readonly urgent: boolean
}

const dated = (release: WantedRelease): DatedRelease => ({
  sha: release.sha,
  modifyIndex: release.specIndex,
  createdAt: release.spec?.createdAt
})

/** The deploy target before all, then the one order of releases (spec/tree.ts `newestFirst`). */
const candidateOrder = (a: Candidate, b: Candidate): number => {
  if (a.urgent !== b.urgent) return a.urgent ? -1 : 1
  return newestFirst(dated(a.release), dated(b.release))
}

const planReleases = (
  app: string,
  desired: AppDesired,
  observed: AppObserved,
  now: number,
  actions: Action[],
  candidates: Candidate[]
) => {
  const wanted = wantedReleases(desired)
  const { status, disk, preparing } = observed

  for (const release of wanted.values()) {
    const { sha, specIndex } = release
    if (preparing.has(sha)) continue
    const recorded = status.releases[sha]
    const onDisk = disk.releases.get(sha)
    const sameSpec = recorded?.specIndex === specIndex

    if (release.specError !== undefined || release.spec === undefined) {
      if (!(recorded?.phase === "failed" && sameSpec && recorded.message === release.specError)) {
        const attempt = recorded === undefined ? 1 : sameSpec ? recorded.attempt : recorded.attempt + 1
        actions.push({
          _tag: "FailRelease",
          app,
          sha,
          specIndex,
          attempt,
          message: release.specError ?? `${sha}: no ReleaseSpec`
        })
      }
      continue
    }
    if (onDisk?.ready === true) {
      if (recorded?.phase !== "ready") actions.push({ _tag: "AdoptReady", app, sha, specIndex })
      continue
    }
    if (recorded?.phase === "failed" && sameSpec) continue
    // Waiting to try again (the artifact store down): its time has not come, and it
    // takes no slot meanwhile. A rewritten spec does not wait.
    const retry = observed.retrying?.get(sha)
    if (retry !== undefined && retry.specIndex === specIndex && retry.at > now) continue

    // Fresh (1), a retry after failure or of a ready release whose directory vanished
    // (+1), or the continuation of one a crash or restart interrupted (same attempt).
    const attempt = recorded === undefined
      ? 1
      : recorded.phase === "failed" || recorded.phase === "ready"
      ? recorded.attempt + 1
      : recorded.attempt
    candidates.push({ app, release, spec: release.spec, attempt, urgent: desired.deploy?.sha === sha })
  }

  for (const [sha, work] of preparing) {
    if (!wanted.has(sha) && !work.cancelling) actions.push({ _tag: "Cancel", app, sha })
  }

  const keep = new Set<string>(wanted.keys())
  for (const sha of preparing.keys()) keep.add(sha)
  if (disk.current !== null) keep.add(disk.current)
  if (disk.previous !== null) keep.add(disk.previous)
  if (observed.deploying !== undefined) keep.add(observed.deploying.sha)

  // A release that failed for good keeps its status entry (so it is not tried again
  // until its spec is rewritten) but not its files: months of failed branch builds
  // must not fill the disk.
  const failedForGood = (sha: string) => {
    const recorded = status.releases[sha]
    return recorded?.phase === "failed" && recorded.specIndex === wanted.get(sha)?.specIndex &&
      !preparing.has(sha) && sha !== disk.current && sha !== disk.previous && sha !== observed.deploying?.sha
  }
  for (const sha of disk.releases.keys()) {
    if (!keep.has(sha) || failedForGood(sha)) actions.push({ _tag: "RemoveRelease", app, sha })
  }
  for (const sha of Object.keys(status.releases)) {
    if (!keep.has(sha)) actions.push({ _tag: "ForgetRelease", app, sha })
  }

  // Only the newest failures keep their details (log tail, step times) in the status
  // document; older ones keep what a person and the plan need: phase, message, attempt.
  const stale = Object.entries(status.releases)
    .filter(([sha, r]) => r.phase === "failed" && keep.has(sha))
    .sort(([, a], [, b]) => (b.finishedAt ?? "").localeCompare(a.finishedAt ?? ""))
    .slice(KEEP_FAILED_LOGS)
    .filter(([, r]) => r.log !== undefined || r.startedAt !== undefined || Object.keys(r.steps).length > 0)
    .map(([sha]) => sha)
  if (stale.length > 0) actions.push({ _tag: "CompactFailures", app, shas: stale })
}

/** Failed releases that keep their log tail and step times in the status. */
export const KEEP_FAILED_LOGS = 5

// ---------------------------------------------------------------------------------
// Deploys

const TERMINAL_DEPLOY = new Set(["live", "failed"])

/**
 * Why a deploy must not run now: the app is locked and the DeploySpec is not forced.
 * A lock whose value does not decode holds too (someone meant to freeze); one past
 * its `until` does not. Asked by the deploy itself (deploy.ts), which reads the lock
 * fresh before its pre-deploy and under its slot: the node does not watch the lock, so
 * the plan starts a deploy whatever the lock says.
 */
export const frozenBy = (lock: AppLock | undefined, force: boolean, now: number): string | undefined => {
  if (lock === undefined || force) return undefined
  if ("unreadable" in lock) return `deploys are locked (${lock.unreadable}); waiting until the lock is fixed or removed`
  const { doc } = lock
  if (!lockInForce(doc, new Date(now))) return undefined
  return `locked by ${doc.by}${
    doc.until === undefined ? "" : ` until ${doc.until}`
  }: ${doc.reason}; waiting (\`sacar unlock\` or a forced deploy goes on)`
}

const planDeploy = (app: string, desired: AppDesired, observed: AppObserved, actions: Action[]) => {
  const target = desired.deploy
  const running = observed.deploying
  if (running !== undefined) {
    // The old run must be gone before the next starts: it may still be killing its
    // bin/deploy, removing its process record or switching `current`.
    if (running.cancelling === true) return
    if (target === undefined) {
      actions.push({ _tag: "CancelDeploy", app, generation: running.generation, reason: "the DeploySpec was deleted" })
    } else if (running.generation !== target.generation) {
      actions.push({
        _tag: "CancelDeploy",
        app,
        generation: running.generation,
        reason: `superseded by deploy generation ${target.generation}`
      })
    }
    return
  }
  if (target === undefined) return

  const recorded = observed.status.deploy
  if (recorded !== null && recorded.generation === target.generation && TERMINAL_DEPLOY.has(recorded.phase)) return
  // A generation older than the one already handled (a stale read): nothing to do.
  if (recorded !== null && recorded.generation > target.generation) return

  const { sha, generation } = target
  // No record of any deploy (the app is served again, its status was withdrawn) and the
  // target already live here: running bin/deploy again would restart a live service.
  if (recorded === null && observed.disk.current === sha && observed.disk.releases.get(sha)?.ready === true) {
    actions.push({ _tag: "AdoptLive", app, generation, sha })
    return
  }
  if (observed.disk.releases.get(sha)?.ready === true) {
    actions.push({ _tag: "StartDeploy", app, generation, sha })
    return
  }
  const release = wantedReleases(desired).get(sha)
  const prepared = observed.status.releases[sha]
  const preparing = observed.preparing.has(sha)
  if (!preparing && prepared?.phase === "failed" && release !== undefined && prepared.specIndex === release.specIndex) {
    actions.push({
      _tag: "FailDeploy",
      app,
      generation,
      sha,
      message: `release ${shortSha(sha)} failed to prepare on this node: ${
        prepared.message ?? "see the release's status"
      }`
    })
    return
  }
  const message = `waiting for release ${shortSha(sha)} to be prepared on this node`
  if (!(recorded?.generation === generation && recorded.phase === "waiting" && recorded.message === message)) {
    actions.push({ _tag: "DeployWaiting", app, generation, sha, message })
  }
}

// ---------------------------------------------------------------------------------
// The whole node

const sameError = (a: string | undefined, b: string | undefined) => (a ?? "") === (b ?? "")

/** The actions that bring this node closer to what Consul asks of it. */
export const plan = (desired: NodeDesired, observed: NodeObserved): ReadonlyArray<Action> => {
  const actions: Action[] = []
  const candidates: Candidate[] = []

  for (const app of observed.apps.keys()) {
    const wanted = desired.apps.get(app)
    if (wanted === undefined) {
      actions.push({ _tag: "Unserve", app, reason: `${app} has no AppConfig any more` })
    } else if (!serves(desired.node, wanted)) {
      actions.push({ _tag: "Unserve", app, reason: `the AppConfig's nodes no longer match ${desired.node}` })
    }
  }
  for (const [app, wanted] of desired.apps) {
    if (!observed.apps.has(app) && serves(desired.node, wanted)) actions.push({ _tag: "Serve", app })
  }

  let inFlight = 0
  for (const runtime of observed.apps.values()) inFlight += runtime.preparing.size

  for (const [app, runtime] of observed.apps) {
    const wanted = desired.apps.get(app)
    if (wanted === undefined || !serves(desired.node, wanted)) continue

    const error = wanted.errors.length === 0 ? undefined : wanted.errors.join("; ")
    if (!sameError(error, runtime.status.error)) actions.push({ _tag: "SetError", app, error })

    const { current, previous } = runtime.disk
    if (runtime.status.current !== current || (runtime.status.previous ?? null) !== previous) {
      actions.push({ _tag: "SetLinks", app, current, previous })
    }
    // Without any config that decoded there is no artifact template and no node list
    // to trust: report the error and touch nothing.
    if (wanted.config === undefined) continue

    planReleases(app, wanted, runtime, desired.now, actions, candidates)
    planDeploy(app, wanted, runtime, actions)
  }

  candidates.sort(candidateOrder)
  let free = Math.max(0, desired.concurrency - inFlight)
  for (const c of candidates) {
    const { sha, specIndex } = c.release
    if (free > 0) {
      free -= 1
      actions.push({ _tag: "Prepare", app: c.app, sha, specIndex, attempt: c.attempt, spec: c.spec })
    } else {
      const recorded = observed.apps.get(c.app)?.status.releases[sha]
      if (!(recorded?.phase === "pending" && recorded.specIndex === specIndex && recorded.attempt === c.attempt)) {
        actions.push({ _tag: "Queue", app: c.app, sha, specIndex, attempt: c.attempt })
      }
    }
  }
  return actions
}

// ---------------------------------------------------------------------------------
// Halting a rollout

export interface PeerDeploy {
  readonly node: string
  readonly generation: number
  readonly phase: string
  readonly message?: string | undefined
}

export const HALTED_PREFIX = "rollout halted: "

/**
 * Whether a node about to run `bin/deploy` for `generation` must not start because
 * another node already failed it. Nodes that were themselves halted point at the
 * node whose own failure started it, so the message always names the root cause.
 */
export const haltReason = (self: string, generation: number, peers: ReadonlyArray<PeerDeploy>): string | undefined => {
  const failed = peers.filter((p) => p.node !== self && p.generation === generation && p.phase === "failed")
  const root = failed.find((p) => !(p.message ?? "").startsWith(HALTED_PREFIX))
  if (root !== undefined) return `${HALTED_PREFIX}${root.node} failed: ${root.message ?? "bin/deploy failed"}`
  const relayed = failed.find((p) => p.message !== undefined)
  return relayed?.message
}
