/**
 * The check run (or commit status) one commit of one app should show, computed from
 * documents alone. Pure and deterministic: the same inputs give the same bytes, so
 * a digest of the result tells the loop whether GitHub needs an update at all. Text
 * that would change with the clock (elapsed times of running steps) is left out for
 * that reason; only finished step times are shown.
 */
import { createHash } from "node:crypto"
import type { CheckRunAction, CheckRunConclusion, CheckRunStatus, CommitState } from "../../github/github.ts"
import { truncateBytes } from "../../github/limits.ts"
import type { AppConfig, LockDoc, PinDoc } from "../../spec/documents.ts"
import { STEP_NAMES } from "../../spec/documents.ts"
import { durationMillis, formatDuration } from "../../spec/duration.ts"
import type { GitHubRecord } from "../../spec/github-record.ts"
import { shortSha } from "../../spec/names.ts"
import type { DeployView, NodeRelease, ReleaseView } from "./release-view.ts"
import { failedStep } from "./release-view.ts"

export const DEPLOY_ACTION: CheckRunAction = {
  label: "Deploy",
  description: "Make this release live on every node",
  identifier: "deploy"
}
export const PREPARE_ACTION: CheckRunAction = {
  label: "Prepare",
  description: "Prepare this commit on every node",
  identifier: "prepare"
}

/** Log tails shown per failing node; the check run's text stays far below 64 KiB. */
const LOG_TAIL_BYTES = 4096
const MAX_FAILED_LOGS = 5

export interface RenderInput {
  readonly app: string
  readonly sha: string
  readonly config: AppConfig
  /** The branch the commit was pushed to, when known (GitHubRecord or ReleaseSpec ref). */
  readonly branch: string | undefined
  /** A ReleaseSpec exists, or the current DeploySpec names this sha (which prepares it). */
  readonly hasRelease: boolean
  readonly release: ReleaseView
  /** When preparing started (ReleaseSpec createdAt, or when the leader first saw it), ms. */
  readonly startedAt: number | undefined
  /** The current deploy, only when it targets this sha. */
  readonly deploy: DeployView | undefined
  /** A lock in force. */
  readonly lock: LockDoc | undefined
  readonly pin: PinDoc | undefined
  readonly refused: GitHubRecord["refused"]
  readonly autoDeployedAt: string | undefined
  readonly now: number
  readonly publicUrl: string | undefined
  /** When the commit was first recorded (GitHubRecord createdAt), ms: a wait for its artifact ends. */
  readonly waitingSince?: number | undefined
  /** SACAR_ARTIFACT_WAIT: a commit whose artifact has not come within this long stops waiting (neutral). */
  readonly artifactWaitMs: number
}

/** Milliseconds at which a commit without a release stops waiting for its artifact, or undefined. */
export const artifactDeadline = (input: Pick<RenderInput, "waitingSince" | "artifactWaitMs">): number | undefined =>
  input.waitingSince === undefined ? undefined : input.waitingSince + input.artifactWaitMs

export interface CheckView {
  readonly status: CheckRunStatus
  readonly conclusion: CheckRunConclusion | undefined
  readonly title: string
  readonly summary: string
  readonly text: string | undefined
  readonly actions: ReadonlyArray<CheckRunAction>
  readonly detailsUrl: string | undefined
}

export const checkRunName = (app: string): string => `sacar/${app}`

export const isDeployBranch = (config: AppConfig, branch: string | undefined): boolean => branch === config.branch

/** Milliseconds at which a preparing release turns timed_out, or undefined. */
export const prepareDeadline = (
  input: Pick<RenderInput, "startedAt" | "config">,
  timeoutMs: number
): number | undefined => input.startedAt === undefined ? undefined : input.startedAt + timeoutMs

const esc = (s: string): string => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ")

const nodeMessage = (n: NodeRelease): string => {
  if (n.error !== undefined) return n.error
  if (n.phase === "unreported") return "not started yet"
  return n.status?.message ?? ""
}

const releaseTable = (view: ReleaseView, deploy: DeployView | undefined): string => {
  const deployOf = new Map(deploy?.nodes.map((d) => [d.node, d]) ?? [])
  const head = ["node", "phase", ...STEP_NAMES, ...(deploy ? ["deploy"] : []), "message"]
  const rows = view.nodes.map((n) => {
    const steps = STEP_NAMES.map((s) => {
      const ms = n.status?.steps[s]?.ms
      return ms === undefined ? "" : formatDuration(ms)
    })
    const d = deployOf.get(n.node)
    const message = d?.status?.phase === "failed" ? (d.status.message ?? "deploy failed") : nodeMessage(n)
    return [n.node, n.phase, ...steps, ...(deploy ? [d?.phase ?? ""] : []), message]
  })
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`)
  ].join("\n")
}

/** "web-2 failed at install: pip exited 1", without repeating the step the message starts with. */
const failureSentence = (n: NodeRelease): string => {
  const step = failedStep(n.status)
  const message = (n.status?.message ?? "").replace(new RegExp(`^${step}\\b:?\\s*`, "i"), "")
  return `${n.node} failed at ${step}${message ? `: ${message}` : ""}`
}

const readyLine = (view: ReleaseView): string => `${view.ready} of ${view.expected.length} nodes ready`

const tail = (log: string): string => {
  const bytes = Buffer.from(log, "utf8")
  if (bytes.length <= LOG_TAIL_BYTES) return log
  return `…${bytes.subarray(bytes.length - LOG_TAIL_BYTES).toString("utf8").replace(/^\uFFFD+/, "")}`
}

const fence = (log: string): string => {
  const body = tail(log).replace(/```/g, "`\u200b``")
  return `\`\`\`\n${body}\n\`\`\``
}

const lockLine = (lock: LockDoc): string =>
  `Deploys are locked by ${lock.by}: ${lock.reason}${lock.until ? ` (until ${lock.until})` : ""}.`

const notes = (input: RenderInput, deployBranch: boolean): string[] => {
  const out: string[] = []
  if (input.lock) out.push(`🔒 ${lockLine(input.lock)}`)
  if (input.pin)
    out.push(
      `📌 Auto-deploy is paused: pinned at \`${
        shortSha(input.pin.sha)
      }\` by ${input.pin.by} (${input.pin.reason}); \`sacar unpin ${input.app}\` resumes it.`
    )
  if (
    input.config.autoDeploy && deployBranch && input.release.allReady && input.deploy === undefined &&
    input.autoDeployedAt === undefined
  ) {
    if (input.lock) out.push("Auto-deploy is held until the lock is lifted.")
    else if (input.pin) out.push("Auto-deploy is held by the pin.")
  }
  const refused = input.refused
  const deployedAfter = input.deploy !== undefined && refused !== undefined
  if (refused !== undefined && !deployedAfter)
    out.push(`⛔ A deploy requested by ${refused.by} at ${refused.at} was refused: ${refused.reason}`)
  if (input.autoDeployedAt !== undefined) out.push(`Auto-deployed at ${input.autoDeployedAt}.`)
  return out
}

const deploySection = (deploy: DeployView): string => {
  const who = deploy.requestedBy ? `, requested by ${deploy.requestedBy}` : ""
  const lines = [
    `### Deploy (generation ${deploy.generation}${who})`,
    `**${deploy.live} of ${deploy.expected} nodes live.** ${deploy.description}.`
  ]
  if (deploy.predeploy !== undefined) {
    const p = deploy.predeploy
    lines.push(`Pre-deploy: ${p.state}${p.node ? ` on ${p.node}` : ""}${p.message ? `: ${p.message}` : ""}`)
  }
  return lines.join("\n\n")
}

const failureLogs = (input: RenderInput): string | undefined => {
  const parts: string[] = []
  for (const n of input.release.failed.slice(0, MAX_FAILED_LOGS)) {
    const log = n.status?.log
    parts.push(
      `### ${n.node}: ${failedStep(n.status)} failed\n\n${n.status?.message ?? ""}${log ? `\n\n${fence(log)}` : ""}`
    )
  }
  for (const d of input.deploy?.failed.slice(0, MAX_FAILED_LOGS) ?? []) {
    const log = d.status?.log
    parts.push(`### ${d.node}: bin/deploy failed\n\n${d.status?.message ?? ""}${log ? `\n\n${fence(log)}` : ""}`)
  }
  const p = input.deploy?.predeploy
  if (p?.state === "failed")
    parts.push(
      `### pre-deploy failed${p.node ? ` on ${p.node}` : ""}\n\n${p.message ?? ""}${p.log ? `\n\n${fence(p.log)}` : ""}`
    )
  return parts.length === 0 ? undefined : truncateBytes(parts.join("\n\n"))
}

const summaryOf = (headline: string, input: RenderInput, deployBranch: boolean, extra: string[] = []): string => {
  const parts = [headline, ...extra, ...notes(input, deployBranch)]
  if (input.deploy) parts.push(deploySection(input.deploy))
  if (input.release.expected.length > 0) parts.push(releaseTable(input.release, input.deploy))
  else parts.push(
      `No live node matches this app's nodes (${
        input.config.nodes.map((g) => `\`${g}\``).join(", ")
      }); the release cannot become ready until one registers.`
    )
  return truncateBytes(parts.join("\n\n"))
}

export const render = (input: RenderInput): CheckView => {
  const { app, sha, config, release } = input
  const deployBranch = isDeployBranch(config, input.branch)
  const detailsUrl = input.publicUrl ? `${input.publicUrl}/v1/apps/${app}` : undefined
  const base = { detailsUrl, text: undefined as string | undefined }
  const counts = `**${readyLine(release)}** for \`${app}\` at \`${shortSha(sha)}\`.`

  if (!input.hasRelease) {
    if (!deployBranch && input.branch !== undefined) {
      return {
        ...base,
        status: "completed",
        conclusion: "neutral",
        title: `Not prepared: ${input.branch} is not the deploy branch`,
        summary: truncateBytes(
          `\`${shortSha(sha)}\` is on \`${input.branch}\`; \`${app}\` deploys \`${config.branch}\`. ` +
            `Press **Prepare** to prepare it on the app's ${release.expected.length} node${
              release.expected.length === 1 ? "" : "s"
            } anyway.`
        ),
        actions: [PREPARE_ACTION]
      }
    }
    const waitEnds = artifactDeadline(input)
    if (waitEnds !== undefined && input.now >= waitEnds) {
      return {
        ...base,
        status: "completed",
        conclusion: "neutral",
        title: "No build artifact arrived",
        summary: truncateBytes(
          `No release of \`${app}\` at \`${shortSha(sha)}\` within ${formatDuration(input.artifactWaitMs)}; ` +
            "Sacar stopped waiting. Press **Prepare** to prepare it from the artifact template."
        ),
        actions: [PREPARE_ACTION]
      }
    }
    return {
      ...base,
      status: "queued",
      conclusion: undefined,
      title: "Waiting for build artifact",
      summary: truncateBytes(
        `No release of \`${app}\` at \`${shortSha(sha)}\` yet: waiting for the build to announce its artifact ` +
          `(\`sacar notify\`${config.buildWorkflow ? ` or the \`${config.buildWorkflow}\` workflow` : ""}).`
      ),
      actions: []
    }
  }

  const deploy = input.deploy
  const canDeploy = deployBranch && release.allReady && input.lock === undefined && deploy?.state !== "in_progress"
  const actions = canDeploy ? [DEPLOY_ACTION] : []

  if (deploy !== undefined && deploy.state === "failure") {
    const title = deploy.predeploy?.state === "failed"
      ? `Deploy failed: pre-deploy${deploy.predeploy.node ? ` on ${deploy.predeploy.node}` : ""}`
      : `Deploy failed on ${deploy.failed.map((f) => f.node).join(", ")}`
    return {
      ...base,
      status: "completed",
      conclusion: "failure",
      title,
      summary: summaryOf(`${counts} The deploy halted: ${deploy.description}.`, input, deployBranch),
      text: failureLogs(input),
      actions
    }
  }

  if (release.failed.length > 0) {
    const first = release.failed[0]!
    const others = release.failed.length > 1 ? ` and ${release.failed.length - 1} more` : ""
    return {
      ...base,
      status: "completed",
      conclusion: "failure",
      title: `Failed on ${first.node} at ${failedStep(first.status)}${others}`,
      summary: summaryOf(
        `${counts} ${release.failed.map(failureSentence).join("; ")}. Re-run the check to retry.`,
        input,
        deployBranch
      ),
      text: failureLogs(input),
      actions: []
    }
  }

  if (!release.allReady) {
    const timeoutMs = durationMillis(config.prepareTimeout)
    const deadline = prepareDeadline(input, timeoutMs)
    if (deadline !== undefined && input.now >= deadline) {
      const slow = release.nodes.filter((n) => n.phase !== "ready").map((n) => `${n.node} (${n.phase})`)
      return {
        ...base,
        status: "completed",
        conclusion: "timed_out",
        title: `Not ready after ${config.prepareTimeout}: ${readyLine(release)}`,
        summary: summaryOf(
          `${counts} Not ready within prepareTimeout ${config.prepareTimeout}${
            slow.length > 0 ? `; still waiting for ${slow.join(", ")}` : ""
          }.`,
          input,
          deployBranch
        ),
        actions: []
      }
    }
    return {
      ...base,
      status: "in_progress",
      conclusion: undefined,
      title: readyLine(release),
      summary: summaryOf(counts, input, deployBranch),
      actions: []
    }
  }

  // Ready on every expected node.
  if (deploy !== undefined) {
    const title = deploy.state === "success"
      ? `Live on ${deploy.live} of ${deploy.expected} nodes`
      : `Deploying: ${deploy.live} of ${deploy.expected} nodes live`
    return {
      ...base,
      status: "completed",
      conclusion: "success",
      title,
      summary: summaryOf(counts, input, deployBranch),
      actions
    }
  }
  return {
    ...base,
    status: "completed",
    conclusion: "success",
    title: deployBranch ? `Ready to deploy: ${readyLine(release)}` : `Prepared: ${readyLine(release)}`,
    summary: summaryOf(
      counts,
      input,
      deployBranch,
      deployBranch
        ? [input.lock ? "Deploying is disabled while the lock holds." : "Press **Deploy** to make it live."]
        : [
          `\`${
            shortSha(sha)
          }\` is not on the deploy branch \`${config.branch}\`; deploy it with \`sacar deploy ${app} ${sha}\`.`
        ]
    ),
    actions
  }
}

/** Stable fingerprint of what would be sent: equal digests mean nothing to update. */
export const digestOf = (view: CheckView | CommitStatusView): string =>
  createHash("sha256").update(JSON.stringify(view)).digest("hex").slice(0, 32)

export interface CommitStatusView {
  readonly state: CommitState
  readonly description: string
  readonly targetUrl: string | undefined
}

/**
 * Token mode: the same facts as one commit status per app. A neutral "not prepared"
 * run has no commit-status equivalent (nothing to click in token mode), so it is
 * not sent at all.
 */
export const toCommitStatus = (view: CheckView): CommitStatusView | undefined => {
  if (view.conclusion === "neutral") return undefined
  const state: CommitState = view.status !== "completed"
    ? "pending"
    : view.conclusion === "success"
    ? "success"
    : view.conclusion === "timed_out"
    ? "error"
    : "failure"
  return { state, description: view.title, targetUrl: view.detailsUrl }
}
