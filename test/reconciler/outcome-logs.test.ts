// The reconciler's log (what `nomad alloc logs` shows) records every prepare and deploy
// outcome with app, sha and node; and a node that serves an app again does not re-run
// bin/deploy for what is already live in its `current` (issue 16).
import assert from "node:assert/strict"
import { readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { after, test } from "node:test"
import { eventually } from "../support/eventually.ts"
import { writeTarball } from "../support/tarballs.ts"
import {
  appConfig,
  closeConsul,
  consul,
  deploySettled,
  freshKv,
  randomSha,
  releaseEntries,
  releaseSettled,
  SETTLE_MS,
  startReconciler,
  SUITE_MS,
  tempDir
} from "./harness.ts"

after(closeConsul)

/** The JSON log lines whose message matches, with app, sha and node wherever the logger put them. */
const linesMatching = (output: string, re: RegExp): Array<{ text: string; fields: string }> =>
  output.split("\n").filter((l) => l.startsWith("{")).flatMap((l) => {
    const text = String((JSON.parse(l) as { msg?: unknown }).msg)
    return re.test(text) ? [{ text, fields: l }] : []
  })

test("prepare and deploy outcomes are logged with app, sha and node; serving again does not redeploy", {
  timeout: SUITE_MS
}, async (t) => {
  const kv = await freshKv()
  const { addr } = await consul()
  const dir = await tempDir(t, "outcomes")
  const deploys = join(dir, "deploys.log")
  await writeFile(deploys, "")
  // bin/deploy counts its runs, and fails while $DIR/fail exists.
  const good = await writeTarball(
    dir,
    "good.tgz",
    releaseEntries({
      deploy: `echo ran >> ${deploys}\nif [ -e ${dir}/fail ]; then echo "port 8000 already in use"; exit 3; fi`
    }, { requirements: false })
  )
  await kv.put("shop/config", appConfig(good.url, { deployTimeout: "60s" }))
  const node = startReconciler(t, { addr, prefix: kv.prefix, node: "web-1", root: join(dir, "web-1") })
  const dump = () => node.output()

  const sha = randomSha()
  await kv.put(`shop/releases/${sha}`, {})
  assert.equal((await releaseSettled(kv, "shop", "web-1", sha, SETTLE_MS, dump)).phase, "ready")
  await kv.put(`shop/releases/${"0".repeat(40)}`, { artifact: `file://${dir}/missing.tgz` })
  assert.equal((await releaseSettled(kv, "shop", "web-1", "0".repeat(40), SETTLE_MS, dump)).phase, "failed")

  await kv.put("shop/deploy", { sha, requestedAt: new Date().toISOString() })
  const live = await deploySettled(kv, "shop", "web-1", undefined, SETTLE_MS, dump)
  assert.equal(live.phase, "live")
  await writeFile(join(dir, "fail"), "")
  await kv.put("shop/deploy", { sha, requestedAt: new Date(Date.now() + 1000).toISOString() })
  const generation = (await kv.raw("shop/deploy"))!.modifyIndex
  assert.equal((await deploySettled(kv, "shop", "web-1", generation, SETTLE_MS, dump)).phase, "failed")

  const outcomes = await eventually(
    "the outcome lines",
    async () => {
      const out = node.output()
      const found = {
        ready: linesMatching(out, new RegExp(`prepare shop ${sha}: ready`)),
        prepareFailed: linesMatching(out, new RegExp(`prepare shop ${"0".repeat(40)}: failed: .*missing\\.tgz`)),
        live: linesMatching(out, new RegExp(`deploy shop ${sha} generation \\d+: live`)),
        predeploy: linesMatching(out, new RegExp(`pre-deploy shop ${sha} generation \\d+: succeeded on web-1`)),
        deployFailed: linesMatching(
          out,
          new RegExp(`deploy shop ${sha} generation ${generation}: failed: .*exit code 3`)
        )
      }
      return Object.values(found).every((l) => l.length > 0) ? found : undefined
    },
    30_000,
    dump
  )
  for (const [what, lines] of Object.entries(outcomes)) {
    for (const l of lines) assert.match(l.fields, /"node":"web-1"/, `${what}: ${l.fields}`)
  }

  // Stop serving the app, then serve it again: the release is still live in current.
  await rm(join(dir, "fail"))
  await kv.put("shop/deploy", { sha, requestedAt: new Date(Date.now() + 2000).toISOString() })
  const fixed = (await kv.raw("shop/deploy"))!.modifyIndex
  assert.equal((await deploySettled(kv, "shop", "web-1", fixed, SETTLE_MS, dump)).phase, "live")
  const runsBefore = (await readFile(deploys, "utf8")).split("\n").filter(Boolean).length
  await kv.put("shop/config", appConfig(good.url, { deployTimeout: "60s", nodes: ["elsewhere-*"] }))
  await eventually(
    "web-1 to withdraw its status",
    async () => ((await kv.status("shop", "web-1")) === undefined ? true : undefined),
    60_000,
    dump
  )
  await kv.put("shop/config", appConfig(good.url, { deployTimeout: "60s" }))
  const again = await deploySettled(kv, "shop", "web-1", fixed, SETTLE_MS, dump)
  assert.equal(again.phase, "live")
  assert.match(again.message ?? "", /already live in current/)
  assert.equal(
    (await readFile(deploys, "utf8")).split("\n").filter(Boolean).length,
    runsBefore,
    "bin/deploy not run again"
  )
})
