import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { type AppPatch, setApp } from "../operator/actions.ts"
import { checkArtifactUrl, expandArtifact } from "../spec/artifact.ts"
import { parseDuration } from "../spec/duration.ts"
import { appArg, parseCommand, UsageError, withUsage } from "./args.ts"
import { cliKeys, runWithConsul, say } from "./run.ts"

const HELP = `usage: sacar app set <app> [options]

Creates the app, or changes the given fields of its config (sacar/<app>/config)
and keeps the others.

options:
  --repo OWNER/NAME        GitHub repository (turns on GitHub integration)
  --branch NAME            deploy branch (default main)
  --artifact TEMPLATE      tarball URL with {app}, {sha}, {short}: gs://, https://, file://
  --nodes GLOB[,GLOB]      node names that run the app (default *)
  --auto-deploy / --no-auto-deploy
  --keep N                 releases kept (keepReleases, default 5)
  --max-parallel N         nodes running bin/deploy at once (default 1)
  --prepare-timeout DUR    e.g. 15m, 90s or 1h30m (h, m, s, ms)
  --deploy-timeout DUR     e.g. 5m
  --environment NAME       GitHub deployment environment (default production)
  --build-workflow NAME    GitHub Actions workflow whose success means "artifact ready"

examples:
  sacar app set shop --artifact 'gs://acme-builds/shop/{sha}.tgz' --nodes 'web-*'
  sacar app set shop --repo acme/shop --auto-deploy --max-parallel 2
`

const OPTIONS = {
  repo: { type: "string" },
  branch: { type: "string" },
  artifact: { type: "string" },
  nodes: { type: "string" },
  "auto-deploy": { type: "boolean" },
  "no-auto-deploy": { type: "boolean" },
  keep: { type: "string" },
  "max-parallel": { type: "string" },
  "prepare-timeout": { type: "string" },
  "deploy-timeout": { type: "string" },
  environment: { type: "string" },
  "build-workflow": { type: "string" }
} as const

const whole = (flag: string, text: string): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${flag} must be a whole number of at least 1, got ${JSON.stringify(text)}`)
  return n
}

const duration = (flag: string, text: string): string => {
  if (parseDuration(text) === undefined)
    throw new UsageError(`--${flag} must be a duration such as 90s, 15m or 1h30m, got ${JSON.stringify(text)}`)
  return text
}

/** An empty list would make every node stop serving the app (and tear its releases down). */
const nodeGlobs = (text: string): string[] => {
  const globs = text.split(",").map((s) => s.trim()).filter((s) => s !== "")
  if (globs.length === 0)
    throw new UsageError(
      `--nodes needs at least one node name or glob (such as 'web-*' or '*'), got ${JSON.stringify(text)}`
    )
  return globs
}

/** Checked as the nodes will use it: expanded for a sample commit, so placeholders and scheme are both tried. */
const artifactTemplate = (app: string, template: string): string => {
  const checked = checkArtifactUrl(expandArtifact(template, app, "0".repeat(40)))
  if (Result.isFailure(checked)) throw new UsageError(`--artifact: ${checked.failure.message}`)
  return template
}

export const main = (argv: string[]): Promise<number> =>
  withUsage("app", async () => {
    const parsed = parseCommand(argv, OPTIONS, HELP)
    if (parsed === undefined) return 0
    const [verb, name, ...extra] = parsed.positionals
    if (verb !== "set")
      throw new UsageError(
        verb === undefined
          ? "missing subcommand: sacar app set <app>"
          : `unknown subcommand ${JSON.stringify(verb)}; use set`
      )
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`)
    const app = appArg(name)
    const v = parsed.values
    if (v["auto-deploy"] && v["no-auto-deploy"])
      throw new UsageError("--auto-deploy and --no-auto-deploy contradict each other")
    const patch: AppPatch = {}
    if (v.repo !== undefined)
      patch.repo = v.repo
    if (v.branch !== undefined) patch.branch = v.branch
    if (v.artifact !== undefined) patch.artifact = artifactTemplate(app, v.artifact)
    if (v.nodes !== undefined) patch.nodes = nodeGlobs(v.nodes)
    if (v["auto-deploy"]) patch.autoDeploy = true
    if (v["no-auto-deploy"]) patch.autoDeploy = false
    if (v.keep !== undefined) patch.keepReleases = whole("keep", v.keep)
    if (v["max-parallel"] !== undefined) patch.maxParallel = whole("max-parallel", v["max-parallel"])
    if (v["prepare-timeout"] !== undefined) patch.prepareTimeout = duration("prepare-timeout", v["prepare-timeout"])
    if (v["deploy-timeout"] !== undefined) patch.deployTimeout = duration("deploy-timeout", v["deploy-timeout"])
    if (v.environment !== undefined) patch.environment = v.environment
    if (v["build-workflow"] !== undefined) patch.buildWorkflow = v["build-workflow"]
    const keys = cliKeys()
    return runWithConsul(
      "app",
      Effect.gen(function*() {
        const { created, config } = yield* setApp(keys, app, patch)
        yield* say(`${created ? "created" : "updated"} ${keys.config(app)}:\n${JSON.stringify(config, null, 2)}`)
        return 0
      })
    )
  })
