// Deploys across three reconcilers (issue 5, "Must show"): rolling bin/deploy under
// maxParallel, the run-once pre-deploy, halting on failure, redeploys, and kill -9
// during bin/deploy and during the pre-deploy.
import assert from "node:assert/strict"
import { readFile, readlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { after, describe, test, type TestContext } from "node:test"
import { isAlive as alive } from "../../src/process/alive.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { type Kv } from "../support/kv.ts"
import { writeTarball } from "../support/tarballs.ts"
import {
  appConfig,
  closeConsul,
  consul,
  deploySettled,
  freshKv,
  randomSha,
  type Reconciler,
  releaseEntries,
  releaseSettled,
  SETTLE_MS,
  startReconciler,
  SUITE_MS,
  tempDir
} from "./harness.ts"

after(closeConsul)

interface Cluster {
  readonly kv: Kv
  readonly dir: string
  readonly nodes: Reconciler[]
  readonly sha: string
  readonly dump: () => string
  start(node: string): Reconciler
}

/**
 * A cluster of reconcilers serving app "shop" whose release has the given scripts;
 * returns once every node has the release ready. The scripts can write to `$LOG`
 * (a file shared by all nodes) and `$DIR` (the test's directory).
 */
const cluster = async (
  t: TestContext,
  scripts: { preDeploy?: string; deploy?: string },
  options: { nodes?: number; maxParallel?: number } = {}
): Promise<Cluster> => {
  const kv = await freshKv()
  const { addr } = await consul()
  const dir = await tempDir(t, "deploy")
  const vars = `LOG=${dir}/events.log\nDIR=${dir}\n`
  const artifact = await writeTarball(
    dir,
    "shop.tgz",
    // No requirements: what is tested here starts once a release is ready, not how it got so.
    releaseEntries({
      ...(scripts.preDeploy === undefined ? {} : { preDeploy: vars + scripts.preDeploy }),
      ...(scripts.deploy === undefined ? {} : { deploy: vars + scripts.deploy })
    }, { requirements: false })
  )
  await writeFile(join(dir, "events.log"), "")
  await kv.put("shop/config", appConfig(artifact.url, { maxParallel: options.maxParallel ?? 1, deployTimeout: "60s" }))
  const start = (node: string) => startReconciler(t, { addr, prefix: kv.prefix, node, root: join(dir, node) })
  const nodes = Array.from({ length: options.nodes ?? 3 }, (_, i) => start(`web-${i + 1}`))
  const dump = () => nodes.map((n) => `--- ${n.node}\n${n.output()}`).join("\n")
  const sha = randomSha()
  await kv.put(`shop/releases/${sha}`, {})
  for (const n of nodes) assert.equal((await releaseSettled(kv, "shop", n.node, sha, SETTLE_MS, dump)).phase, "ready")
  return { kv, dir, nodes, sha, dump, start }
}

/**
 * Writes the DeploySpec and returns its generation (the key's ModifyIndex). Consul
 * skips a write of identical bytes (the index does not move), so each carries its time.
 */
const deploy = async (kv: Kv, sha: string): Promise<number> => {
  await kv.put("shop/deploy", { sha, requestedBy: "test", requestedAt: new Date().toISOString() })
  return (await kv.raw("shop/deploy"))!.modifyIndex
}

interface Event {
  readonly what: string
  readonly node: string
  readonly at: number
  readonly extra: string
}

const events = async (dir: string): Promise<Event[]> =>
  (await readFile(join(dir, "events.log"), "utf8"))
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const [what, node, at, ...extra] = l.split(" ")
      return { what: what!, node: node!, at: Number(at), extra: extra.join(" ") }
    })

/** [start, end] of each node's bin/deploy runs, from `deploy-start`/`deploy-end` events. */
const intervals = (evs: Event[]) => {
  const open = new Map<string, number>()
  const out: Array<{ node: string; start: number; end: number }> = []
  for (const e of evs) {
    if (e.what === "deploy-start") open.set(e.node, e.at)
    if (e.what === "deploy-end") out.push({ node: e.node, start: open.get(e.node)!, end: e.at })
  }
  return out
}

const NOW = "$(date +%s.%N)"
const RECORDING_DEPLOY = (seconds: number) =>
  `echo "deploy-start $SACAR_NODE ${NOW} $SACAR_PREVIOUS_RELEASE_DIR" >> "$LOG"\nsleep ${seconds}\necho "deploy-end $SACAR_NODE ${NOW}" >> "$LOG"`
const RECORDING_PREDEPLOY = `echo "predeploy $SACAR_NODE ${NOW} $COMMIT_SHA" >> "$LOG"\nsleep 0.5`

// Three at a time: each test runs two or three reconcilers.
describe("deploys", { concurrency: 3, timeout: SUITE_MS }, () => {
  test("maxParallel 1: bin/deploy strictly one node at a time, pre-deploy once, all switch current; a redeploy runs again", async (t) => {
    const c = await cluster(t, { preDeploy: RECORDING_PREDEPLOY, deploy: RECORDING_DEPLOY(0.6) })
    const generation = await deploy(c.kv, c.sha)
    for (const n of c.nodes) {
      const d = await deploySettled(c.kv, "shop", n.node, generation, SETTLE_MS, c.dump)
      assert.equal(d.phase, "live", `${n.node}: ${d.message}\n${d.log ?? ""}`)
      assert.equal(d.sha, c.sha)
      assert.equal(d.current, c.sha)
      assert.equal(await readlink(join(n.root, "shop", "current")), join("releases", c.sha))
    }
    let evs = await events(c.dir)
    const pre = evs.filter((e) => e.what === "predeploy")
    assert.equal(pre.length, 1, JSON.stringify(evs))
    assert.equal(pre[0]!.extra, c.sha)
    const runs = intervals(evs).sort((a, b) => a.start - b.start)
    assert.deepEqual(runs.map((r) => r.node).sort(), ["web-1", "web-2", "web-3"])
    for (let i = 1; i < runs.length; i++)
      assert.ok(runs[i]!.start >= runs[i - 1]!.end, `overlap: ${JSON.stringify(runs)}`)
    assert.ok(runs[0]!.start >= pre[0]!.at, "bin/deploy ran before the pre-deploy")
    const predoc = await c.kv.json(`shop/locks/predeploy/${generation}`)
    assert.equal(predoc.phase, "succeeded")
    assert.equal(predoc.generation, generation)

    // The same sha again: a new generation, so pre-deploy and bin/deploy run again.
    const again = await deploy(c.kv, c.sha)
    assert.ok(again > generation)
    for (const n of c.nodes)
      assert.equal((await deploySettled(c.kv, "shop", n.node, again, SETTLE_MS, c.dump)).phase, "live")
    evs = await events(c.dir)
    assert.equal(evs.filter((e) => e.what === "predeploy").length, 2)
    assert.equal(evs.filter((e) => e.what === "deploy-start").length, 6)
    // Redeploying the live release: the previous release dir is that same release.
    const second = evs.filter((e) => e.what === "deploy-start").slice(3)
    for (const e of second) assert.match(e.extra, new RegExp(`releases/${c.sha}$`))

    // A third generation: the node that runs its pre-deploy removes the run-once record
    // of the first; the newest two are kept (a node may not have seen the newest yet).
    const third = await deploy(c.kv, c.sha)
    for (const n of c.nodes)
      assert.equal((await deploySettled(c.kv, "shop", n.node, third, SETTLE_MS, c.dump)).phase, "live")
    assert.equal(await c.kv.json(`shop/locks/predeploy/${generation}`), undefined)
    assert.equal((await c.kv.json(`shop/locks/predeploy/${again}`)).phase, "succeeded")
    assert.equal((await c.kv.json(`shop/locks/predeploy/${third}`)).phase, "succeeded")
  })

  test("maxParallel 3: bin/deploy runs on the nodes at the same time", async (t) => {
    // 6 s each: long enough that a node reacting a few seconds late on a loaded machine
    // still overlaps; with one slot at a time they could never overlap.
    const c = await cluster(t, { deploy: RECORDING_DEPLOY(6) }, { maxParallel: 3 })
    const generation = await deploy(c.kv, c.sha)
    for (const n of c.nodes)
      assert.equal((await deploySettled(c.kv, "shop", n.node, generation, SETTLE_MS, c.dump)).phase, "live")
    const runs = intervals(await events(c.dir))
    assert.equal(runs.length, 3)
    const latestStart = Math.max(...runs.map((r) => r.start))
    const earliestEnd = Math.min(...runs.map((r) => r.end))
    assert.ok(latestStart < earliestEnd, `expected all three to overlap: ${JSON.stringify(runs)}`)
    // No bin/pre-deploy in this release: recorded as succeeded all the same.
    assert.match((await c.kv.json(`shop/locks/predeploy/${generation}`)).message, /no bin\/pre-deploy/)
  })

  test("a lock written during a rollout stops the nodes that have not deployed yet; an unlock lets them go at once", async (t) => {
    // bin/deploy waits for a gate file, so the test decides when the first node is done.
    const gated =
      `echo "deploy-start $SACAR_NODE ${NOW}" >> "$LOG"\nwhile [ ! -f "$DIR/go" ]; do sleep 0.1; done\necho "deploy-end $SACAR_NODE ${NOW}" >> "$LOG"`
    const c = await cluster(t, { deploy: gated }, { nodes: 2, maxParallel: 1 })
    const generation = await deploy(c.kv, c.sha)
    const started = async () => (await events(c.dir)).filter((e) => e.what === "deploy-start")
    const [first] = await eventually(
      "one node's bin/deploy to start",
      async () => {
        const s = await started()
        return s.length === 1 ? s : undefined
      },
      SETTLE_MS,
      c.dump
    )
    const second = c.nodes.find((n) => n.node !== first!.node)!

    // The second node's deploy is pending (waiting for the slot) when the lock is written.
    await c.kv.put("shop/lock", { by: "alice", reason: "incident 4711", at: new Date().toISOString() })
    await writeFile(join(c.dir, "go"), "")
    assert.equal((await deploySettled(c.kv, "shop", first!.node, generation, SETTLE_MS, c.dump)).phase, "live")
    await eventually(
      "the second node to wait on the lock, saying why",
      async () => {
        const d = (await c.kv.status("shop", second.node))?.deploy
        return d?.generation === generation && d.phase === "waiting" &&
          /locked by alice.*incident 4711/.test(d.message ?? "")
      },
      SETTLE_MS,
      c.dump
    )
    await sleep(2_000)
    assert.equal((await c.kv.status("shop", second.node)).deploy.phase, "waiting")
    assert.equal((await started()).length, 1, "bin/deploy ran on a node while the app was locked")

    const unlockedAt = Date.now() / 1000
    await c.kv.delete("shop/lock")
    assert.equal((await deploySettled(c.kv, "shop", second.node, generation, SETTLE_MS, c.dump)).phase, "live")
    const resumed = (await started()).find((e) => e.node === second.node)!
    // Seen at once (a blocking read on the lock), not at the end of a wait.
    assert.ok(
      resumed.at - unlockedAt < 10,
      `bin/deploy started ${(resumed.at - unlockedAt).toFixed(1)} s after the unlock`
    )
  })

  test("a failing bin/deploy on one node halts the rollout", async (t) => {
    // The first node to run bin/deploy fails; with maxParallel 1 the others come after it.
    const c = await cluster(t, {
      deploy: `echo "deploy-start $SACAR_NODE ${NOW}" >> "$LOG"
if mkdir "$DIR/first" 2>/dev/null; then echo "migration check failed on purpose"; exit 3; fi
echo "deploy-end $SACAR_NODE ${NOW}" >> "$LOG"`
    })
    const generation = await deploy(c.kv, c.sha)
    const results = new Map<string, Awaited<ReturnType<typeof deploySettled>>>()
    for (const n of c.nodes)
      results.set(n.node, await deploySettled(c.kv, "shop", n.node, generation, SETTLE_MS, c.dump))
    const starts = (await events(c.dir)).filter((e) => e.what === "deploy-start")
    assert.equal(starts.length, 1, `only the failing node ran bin/deploy: ${JSON.stringify(starts)}`)
    const culprit = starts[0]!.node
    const failed = results.get(culprit)!
    assert.equal(failed.phase, "failed")
    assert.equal(failed.message, "bin/deploy failed (exit code 3)")
    assert.match(failed.log, /migration check failed on purpose/)
    assert.equal(failed.current, null, "a failed deploy does not switch current")
    for (const [node, r] of results) {
      if (node === culprit) continue
      assert.equal(r.phase, "failed")
      assert.equal(r.message, `rollout halted: ${culprit} failed: bin/deploy failed (exit code 3)`)
      assert.equal(r.current, null)
    }
  })

  test("a failing bin/pre-deploy stops every node", async (t) => {
    const c = await cluster(t, {
      preDeploy: `echo "predeploy $SACAR_NODE ${NOW}" >> "$LOG"\necho "relation users does not exist"\nexit 1`,
      deploy: RECORDING_DEPLOY(0)
    }, { nodes: 2 })
    const generation = await deploy(c.kv, c.sha)
    for (const n of c.nodes) {
      const d = await deploySettled(c.kv, "shop", n.node, generation, SETTLE_MS, c.dump)
      assert.equal(d.phase, "failed")
      assert.match(d.message, /^pre-deploy failed on web-\d: bin\/pre-deploy failed \(exit code 1\)$/)
      assert.match(d.log, /relation users does not exist/)
    }
    const evs = await events(c.dir)
    assert.equal(evs.filter((e) => e.what === "predeploy").length, 1)
    assert.equal(evs.filter((e) => e.what === "deploy-start").length, 0)
  })

  test("kill -9 during bin/deploy: the restarted node runs it again and goes live", async (t) => {
    const c = await cluster(t, {
      deploy: `echo "deploy-start $SACAR_NODE ${NOW}" >> "$LOG"
if [ "$SACAR_NODE" = web-1 ] && [ ! -e "$DIR/killed-once" ]; then
  touch "$DIR/killed-once"
  echo $$ > "$DIR/orphan.pid"
  i=0; while [ $i -lt 600 ] && [ ! -e "$DIR/stop" ]; do sleep 0.1; i=$((i+1)); done
  exit 0
fi
echo "deploy-end $SACAR_NODE ${NOW}" >> "$LOG"`,
      preDeploy: RECORDING_PREDEPLOY
    }, { nodes: 2 })
    const generation = await deploy(c.kv, c.sha)
    await eventually(
      "web-1 in bin/deploy",
      async () => (await events(c.dir)).some((e) => e.what === "deploy-start" && e.node === "web-1") ? true : undefined,
      60_000,
      c.dump
    )
    await c.nodes[0]!.kill("SIGKILL")
    t.after(() => writeFile(join(c.dir, "stop"), "").catch(() => undefined)) // in any case, the orphan ends
    const orphan = Number(await readFile(join(c.dir, "orphan.pid"), "utf8"))
    assert.ok(alive(orphan), "the script outlives a kill -9 of its reconciler")
    const restarted = c.start("web-1")
    // The restarted reconciler ends the orphan before running bin/deploy again.
    await eventually(
      "the orphaned bin/deploy to be ended",
      async () => (alive(orphan) ? undefined : true),
      SETTLE_MS,
      () => restarted.output()
    )
    const d = await deploySettled(c.kv, "shop", "web-1", generation, SETTLE_MS, () => restarted.output())
    assert.equal(d.phase, "live", d.message)
    assert.equal(await readlink(join(c.nodes[0]!.root, "shop", "current")), join("releases", c.sha))
    assert.equal((await deploySettled(c.kv, "shop", "web-2", generation, SETTLE_MS, c.dump)).phase, "live")
    const evs = await events(c.dir)
    assert.equal(evs.filter((e) => e.what === "deploy-start" && e.node === "web-1").length, 2)
    assert.equal(evs.filter((e) => e.what === "predeploy").length, 1)
  })

  test("kill -9 during the pre-deploy: another run takes over, and it succeeds exactly once", async (t) => {
    const c = await cluster(t, {
      preDeploy: `echo "predeploy-start $SACAR_NODE ${NOW}" >> "$LOG"
if [ ! -e "$DIR/first-run" ]; then
  touch "$DIR/first-run"
  echo "$SACAR_NODE" > "$DIR/first-holder"
  echo $$ > "$DIR/orphan.pid"
  i=0; while [ $i -lt 600 ] && [ ! -e "$DIR/stop" ]; do sleep 0.1; i=$((i+1)); done
  exit 7
fi
echo "predeploy-ok $SACAR_NODE ${NOW}" >> "$LOG"`,
      deploy: RECORDING_DEPLOY(0)
    }, { nodes: 2 })
    const generation = await deploy(c.kv, c.sha)
    const holder = await eventually(
      "the first pre-deploy run",
      async () => {
        try {
          return (await readFile(join(c.dir, "first-holder"), "utf8")).trim()
        } catch {
          return undefined
        }
      },
      60_000,
      c.dump
    )
    const index = c.nodes.findIndex((n) => n.node === holder)
    await c.nodes[index]!.kill("SIGKILL")
    t.after(() => writeFile(join(c.dir, "stop"), "").catch(() => undefined))
    const orphan = Number(await readFile(join(c.dir, "orphan.pid"), "utf8"))
    c.nodes[index] = c.start(holder)
    await eventually(
      "the orphaned bin/pre-deploy to be ended",
      async () => (alive(orphan) ? undefined : true),
      SETTLE_MS,
      c.dump
    )
    for (const n of c.nodes) {
      const d = await deploySettled(c.kv, "shop", n.node, generation, SETTLE_MS, c.dump)
      assert.equal(d.phase, "live", `${n.node}: ${d.message}`)
    }
    const evs = await events(c.dir)
    assert.equal(evs.filter((e) => e.what === "predeploy-ok").length, 1, JSON.stringify(evs))
    assert.equal(evs.filter((e) => e.what === "predeploy-start").length, 2)
    const predoc = await c.kv.json(`shop/locks/predeploy/${generation}`)
    assert.equal(predoc.phase, "succeeded")
    assert.equal(predoc.attempt, 2)
    assert.equal(evs.filter((e) => e.what === "deploy-start").length, 2)
  })
})
