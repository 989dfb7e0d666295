/**
 * The demo's script: pack, start the components, register the app, create a
 * release and watch it prepare, deploy it and watch `current` switch node by node.
 * Every wait listens to the stage's AbortSignal (Ctrl-C, the time bound, a component
 * that died), and every process goes through the Supervisor, so whoever owns the
 * stage can always stop everything.
 */
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { readFile, readlink, rename } from "node:fs/promises"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Consul } from "../consul/consul.ts"
import { deploySha, releaseSha, setApp } from "../operator/actions.ts"
import { formatDuration } from "../spec/duration.ts"
import { shortSha } from "../spec/names.ts"
import { type AppState, readApp, snapshotFrom } from "../state/snapshot.ts"
import {
  type ComponentEnv,
  controllerUrl,
  lastLines,
  readText,
  startController,
  startReconciler
} from "./components.ts"
import type { DemoConsul } from "./consul.ts"
import type { Display } from "./display.ts"
import { packShopExample } from "./example.ts"
import { DEMO_NODES, type DemoFolder } from "./folder.ts"
import { DEMO_DIR_VARIABLE } from "./leftovers.ts"
import { nextSteps, shownPath } from "./next-steps.ts"
import type { DemoOptions } from "./options.ts"
import type { Supervisor } from "./processes.ts"
import {
  changeLines,
  deployOutcome,
  type NodeView,
  nodeViews,
  type Outcome,
  prepareOutcome,
  renderTable,
  type Watched
} from "./progress.ts"
import { linkNodesPip, unpackSharedPip } from "./shared-pip.ts"

export const DEMO_APP = "shop"

/** Everything the script acts on; the owner (run.ts) sets it up and tears it down. */
export interface Stage {
  readonly options: DemoOptions
  readonly folder: DemoFolder
  readonly consul: DemoConsul
  readonly supervisor: Supervisor
  readonly display: Display
  readonly signal: AbortSignal
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
}

/** A failure of the walk-through, with what a person needs to see (exit 1). */
export class DemoFailed extends Error {}

// The walk-through is plain async code driving child processes, not an Effect program:
// its stopwatch is the monotonic performance.now(), and its table's "ago" is the wall clock.
const since = (t0: number) => formatDuration(performance.now() - t0)
const label = (what: string, text: string) => `${what.padEnd(11)}${text}`

/** Resolves with `promise`, or rejects with the abort reason as soon as `signal` fires. */
export const abortable = <A>(promise: Promise<A>, signal: AbortSignal): Promise<A> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const onAbort = () => reject(signal.reason)
    signal.addEventListener("abort", onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort)
        resolve(value)
      },
      (error) => {
        signal.removeEventListener("abort", onAbort)
        reject(error)
      }
    )
  })

/** A Consul effect under the stage's signal; an abort wins over whatever the effect did. */
const consulDo = <A, E>(stage: Stage, effect: Effect.Effect<A, E, Consul>): Promise<A> =>
  stage.consul.run(effect, stage.signal).catch((error: unknown) => {
    if (stage.signal.aborted) throw stage.signal.reason
    throw error
  })

export interface PackedRelease {
  readonly sha: string
  readonly sha256: string
  readonly path: string
  readonly url: string
  /** The app's artifact template: file://<artifacts>/{sha}.tgz */
  readonly template: string
  readonly size: number
}

/**
 * Packs examples/shop and names the tarball after a stand-in commit id: the sha1 of
 * its bytes, so the same tarball always gets the same id, as a commit would.
 */
export async function packRelease(folder: DemoFolder, env: NodeJS.ProcessEnv): Promise<PackedRelease> {
  const logged: string[] = []
  let packed
  try {
    packed = await packShopExample(folder.artifacts, {
      env: { ...env, [DEMO_DIR_VARIABLE]: folder.dir },
      log: (l) => logged.push(l)
    })
  } catch (cause) {
    throw new DemoFailed(
      `packing examples/shop failed: ${(cause as Error).message}${
        logged.length ? `\n${lastLines(logged.join("\n"), 10)}` : ""
      }`
    )
  }
  const sha = createHash("sha1").update(await readFile(packed.path)).digest("hex")
  const path = join(folder.artifacts, `${sha}.tgz`)
  await rename(packed.path, path)
  const base = pathToFileURL(folder.artifacts).href
  return {
    sha,
    sha256: packed.sha256,
    path,
    url: `${base}/${sha}.tgz`,
    template: `${base}/{sha}.tgz`,
    size: packed.size
  }
}

/** What `<root>/<app>/current` points at, per node. */
const currentLinks = async (folder: DemoFolder, app: string): Promise<Record<string, string | undefined>> => {
  const out: Record<string, string | undefined> = {}
  for (const node of DEMO_NODES)
    out[node] = await readlink(join(folder.nodeRoot(node), app, "current")).catch(() => undefined)
  return out
}

/**
 * Reads the app and the node registrations once, blocking up to `wait` for the app's
 * keys to change. Node registrations are read without blocking: the short wait
 * notices them soon enough, and keeps the live table's clocks moving.
 */
const readOnce = (stage: Stage, index: number, wait: string) =>
  consulDo(
    stage,
    Effect.gen(function*() {
      const consul = yield* Consul
      const keys = stage.consul.keys
      const app = yield* consul.list(keys.app(DEMO_APP), { index, wait })
      const nodes = yield* consul.list(keys.nodes)
      return { snapshot: snapshotFrom(keys, DEMO_APP, app.value, nodes.value, app.index), index: app.index }
    })
  )

/**
 * Follows the app until `decide` says it is done or failed, or forever when it never
 * does (--keep-running): plain lines per change, the live table on a terminal.
 */
export async function follow(
  stage: Stage,
  watched: (snapshot: AppState) => Watched | undefined,
  decide: (views: ReadonlyArray<NodeView>, watched: Watched) => Outcome,
  detail: "every" | "milestones",
  seen: ReadonlyArray<NodeView> = []
): Promise<{ readonly outcome: Outcome; readonly views: ReadonlyArray<NodeView> }> {
  let index = 0
  let before = seen
  for (;;) {
    stage.signal.throwIfAborted()
    const read = await readOnce(stage, index, "1s")
    // Consul's rule for blocking queries: an index that goes backwards starts over.
    index = read.index < index ? 0 : Math.max(1, read.index)
    const w = watched(read.snapshot)
    if (w === undefined) continue
    const views = nodeViews(read.snapshot, w, DEMO_NODES, await currentLinks(stage.folder, DEMO_APP))
    for (const view of views) {
      const lines = changeLines(before.find((b) => b.node === view.node), view, detail)
      if (lines.length > 0) stage.display.say(lines.join("\n"))
    }
    before = views
    stage.display.table(renderTable(views, w, new Date())) // plain async: see `since`
    const outcome = decide(views, w)
    if (outcome.kind !== "waiting") return { outcome, views }
  }
}

const failureText = async (stage: Stage, outcome: Extract<Outcome, { kind: "failed" }>): Promise<string> => {
  const parts = [`${outcome.node}: ${outcome.message}`]
  if (outcome.log) parts.push(`  output of the failing step:\n${lastLines(outcome.log, 20)}`)
  const logFile = stage.folder.log(outcome.node)
  const log = await readText(logFile)
  if (log.trim() !== "") parts.push(`  the end of ${shownPath(logFile, stage.cwd)}:\n${lastLines(log, 10)}`)
  return parts.join("\n")
}

export interface WalkResult {
  readonly sha: string
  readonly controllerUrl: string
  readonly tookMs: number
  readonly views: ReadonlyArray<NodeView>
}

export async function walkThrough(stage: Stage): Promise<WalkResult> {
  const t0 = performance.now()
  const { display, folder, consul, supervisor, signal } = stage
  const p = (path: string) => shownPath(path, stage.cwd)
  const keys = consul.keys
  display.say(
    label(
      "consul",
      `${consul.embedded ? "embedded dev-consul at " : ""}${consul.address}${
        consul.embedded ? "" : " (CONSUL_HTTP_ADDR)"
      }, KV prefix ${keys.root}`
    )
  )

  // The components boot while the example is packed: both take a moment, neither needs the other.
  const consulNode = consul.embedded
    ? undefined
    : await consulDo(
      stage,
      Effect.gen(function*() {
        return yield* (yield* Consul).agentNode()
      })
    )
  const componentEnv: ComponentEnv = { consul: consul.address, prefix: keys.prefix, base: stage.env, consulNode }
  const controller = await startController(supervisor, componentEnv, folder.log("controller"))
  await linkNodesPip(folder)
  for (const node of DEMO_NODES) {
    const child = await startReconciler(supervisor, componentEnv, node, folder.nodeRoot(node), folder.log(node))
    display.say(label("reconciler", `${node} (pid ${child.pid}), root ${p(folder.nodeRoot(node))}`))
  }
  const packStarted = performance.now()
  // pip takes a few seconds; on a terminal a ticking line says so.
  const ticker = display.live
    ? setInterval(() => display.table([`  packing examples/shop (pip, offline) ${since(packStarted)}`]), 250)
    : undefined
  const [url, release] = await abortable(
    Promise.all([
      controllerUrl(controller, 30_000, signal),
      packRelease(folder, stage.env),
      unpackSharedPip(folder, stage.env, signal)
    ]),
    signal
  )
    .finally(() => {
      clearInterval(ticker)
      display.table([])
    })
  display.say(label("controller", `${url} (pid ${controller.pid})`))
  display.say(
    label(
      "pack",
      `examples/shop -> ${p(release.path)} (${(release.size / 1024).toFixed(1)} KiB) in ${since(packStarted)}`
    )
  )
  display.say(label("commit", `${release.sha} (a stand-in: the sha1 of the tarball)`))

  await consulDo(stage, setApp(keys, DEMO_APP, { artifact: release.template, nodes: ["demo-*"], maxParallel: 1 }))
  display.say(
    label("app", `${DEMO_APP}: artifact ${release.template}, nodes demo-*, maxParallel 1  (${keys.config(DEMO_APP)})`)
  )

  const prepareStarted = performance.now()
  await consulDo(
    stage,
    releaseSha(keys, DEMO_APP, release.sha, { artifact: release.url, sha256: release.sha256, by: "sacar demo" })
  )
  display.say(label("release", `${release.sha}  (${keys.release(DEMO_APP, release.sha)}): every node prepares it`))
  const detail = display.live ? "milestones" : "every"
  const prepared = await follow(
    stage,
    () => ({ sha: release.sha, generation: undefined }),
    (views) => prepareOutcome(views),
    detail
  )
  if (prepared.outcome.kind === "failed") throw new DemoFailed(await failureText(stage, prepared.outcome))
  display.freeze()
  display.say(label("prepared", `on all ${DEMO_NODES.length} nodes in ${since(prepareStarted)}`))

  const deployStarted = performance.now()
  await consulDo(stage, deploySha(keys, DEMO_APP, release.sha, { by: "sacar demo", force: false }))
  const generation = (await consulDo(stage, readApp(keys, DEMO_APP))).deploy?.generation
  if (generation === undefined)
    throw new DemoFailed(`${keys.deploy(DEMO_APP)} was written but cannot be read back; see ${p(folder.logs)}/`)
  display.say(
    label(
      "deploy",
      `${shortSha(release.sha)} generation ${generation}  (${
        keys.deploy(DEMO_APP)
      }): bin/pre-deploy once, then bin/deploy one node at a time`
    )
  )
  const deployed = await follow(
    stage,
    () => ({ sha: release.sha, generation }),
    (views, w) => deployOutcome(views, w.sha),
    detail,
    prepared.views
  )
  if (deployed.outcome.kind === "failed") throw new DemoFailed(await failureText(stage, deployed.outcome))
  display.freeze()
  display.say(
    label("live", `on all ${DEMO_NODES.length} nodes in ${since(deployStarted)}; the walk-through took ${since(t0)}`)
  )
  return { sha: release.sha, controllerUrl: url, tookMs: Math.round(performance.now() - t0), views: deployed.views }
}

/** The made-up commit id the next steps suggest for a second release of the same tarball. */
export const secondSha = (sha: string): string => createHash("sha1").update(`${sha} second release`).digest("hex")

export const showNextSteps = (stage: Stage, walked: WalkResult): void => {
  if (stage.options.once) {
    stage.display.say(`logs in ${shownPath(stage.folder.logs, stage.cwd)}/`)
    return
  }
  stage.display.say(
    `\n${
      nextSteps({
        app: DEMO_APP,
        consul: stage.consul.address,
        keys: stage.consul.keys,
        sha: walked.sha,
        secondSha: secondSha(walked.sha),
        artifacts: stage.folder.artifacts,
        controllerUrl: walked.controllerUrl,
        logs: stage.folder.logs,
        nodeRoots: DEMO_NODES.map((node) => ({ node, root: stage.folder.nodeRoot(node) })),
        keepRunning: stage.options.keepRunning,
        cwd: stage.cwd
      })
    }\n`
  )
}

/**
 * --keep-running: keep showing what the nodes do with the newest release and the
 * current deploy, whatever the operator writes, until the stage is aborted.
 */
export const keepFollowing = async (stage: Stage, walked: WalkResult): Promise<void> => {
  await follow(
    stage,
    (s) => {
      // The release written last, whether or not it says when it was created ('{}' does not).
      const newest = [...s.releases].sort((a, b) => b.modifyIndex - a.modifyIndex)[0]
      return newest === undefined ? undefined : { sha: newest.sha, generation: s.deploy?.generation }
    },
    () => ({ kind: "waiting" }),
    stage.display.live ? "milestones" : "every",
    walked.views
  )
}
