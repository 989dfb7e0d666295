// The run-once pre-deploy protocol in-process against a real Consul API (dev-consul or
// CONSUL_HTTP_ADDR): many contenders, one run; a dead runner's record is taken over.
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, test } from "node:test"
import { predeploy } from "../../src/reconciler/predeploy.ts"
import { encodeDocument } from "../../src/spec/decode.ts"
import { makeKeys } from "../../src/spec/keys.ts"
import { PredeployDoc } from "../../src/spec/predeploy.ts"
import { consulForTest } from "../consul/harness.ts"
import { tempDir } from "./harness.ts"

const SHA = "c".repeat(40)

const release = async (dir: string, script: string | undefined) => {
  const releaseDir = join(dir, "release")
  await mkdir(join(releaseDir, "bin"), { recursive: true })
  if (script !== undefined) {
    await writeFile(join(releaseDir, "bin", "pre-deploy"), `#!/bin/sh\nset -e\n${script}\n`)
    await chmod(join(releaseDir, "bin", "pre-deploy"), 0o755)
  }
  return releaseDir
}

const input = (key: string, releaseDir: string, node: string, generation = 42) => ({
  key,
  generation,
  timeoutMs: 30_000,
  groupFile: join(releaseDir, "..", `group-${node}.pid`),
  context: { app: "shop", sha: SHA, node, releaseDir, venv: join(releaseDir, ".venv") },
  onProgress: () => Effect.void
})

describe("run-once pre-deploy", { concurrency: true }, () => {
  test("five contenders: bin/pre-deploy runs once and all of them see it succeed", async (t) => {
    const c = await consulForTest(t)
    const dir = await tempDir(t, "pre")
    const runs = join(dir, "runs")
    const releaseDir = await release(dir, `echo "$SACAR_NODE $COMMIT_SHA" >> "${runs}"\nsleep 0.3\necho migrated`)
    const key = makeKeys(c.prefix).predeploy("shop", 42)
    const outcomes = await c.run(Effect.all(
      Array.from({ length: 5 }, (_, i) => predeploy(input(key, releaseDir, `web-${i}`))),
      { concurrency: "unbounded" }
    ))
    const lines = (await readFile(runs, "utf8")).trim().split("\n")
    assert.equal(lines.length, 1)
    assert.match(lines[0]!, new RegExp(`^web-\\d ${SHA}$`))
    for (const o of outcomes) {
      assert.equal(o._tag, "Succeeded")
      assert.equal(o.doc.node, lines[0]!.split(" ")[0])
    }
    const { value } = await c.run(c.consul.get(key))
    const doc = JSON.parse(value!.value!)
    assert.equal(doc.phase, "succeeded")
    assert.equal(doc.generation, 42)
    assert.equal(doc.attempt, 1)
    assert.match(doc.message, /^bin\/pre-deploy succeeded in /)
    assert.match(doc.log, /migrated/)
    assert.equal(value!.session, undefined, "the lock is given back")
    assert.equal(value!.flags, "3304740253564472344")
  })

  test("a record left `running` by a dead runner is taken over and run again", async (t) => {
    const c = await consulForTest(t)
    const dir = await tempDir(t, "pre")
    const runs = join(dir, "runs")
    const releaseDir = await release(dir, `echo again >> "${runs}"`)
    const key = makeKeys(c.prefix).predeploy("shop", 7)
    const dead: PredeployDoc = {
      generation: 7,
      sha: SHA,
      phase: "running",
      node: "web-9",
      startedAt: new Date().toISOString(),
      attempt: 1
    }
    await c.run(c.consul.put(key, encodeDocument(PredeployDoc, dead), { flags: "3304740253564472344" }))
    const outcome = await c.run(predeploy(input(key, releaseDir, "web-1", 7)))
    assert.equal(outcome._tag, "Succeeded")
    assert.equal(outcome.doc.attempt, 2)
    assert.equal(outcome.doc.node, "web-1")
    assert.equal((await readFile(runs, "utf8")).trim(), "again")
  })

  test("a failure is recorded once and returned to everyone; no script means succeeded", async (t) => {
    const c = await consulForTest(t)
    const dir = await tempDir(t, "pre")
    const failing = await release(dir, `echo "no such table" ; exit 4`)
    const keys = makeKeys(c.prefix)
    const outcomes = await c.run(Effect.all(
      [
        predeploy(input(keys.predeploy("shop", 1), failing, "web-1", 1)),
        predeploy(input(keys.predeploy("shop", 1), failing, "web-2", 1))
      ],
      { concurrency: "unbounded" }
    ))
    for (const o of outcomes) {
      assert.equal(o._tag, "Failed")
      assert.equal(o.doc.message, "bin/pre-deploy failed (exit code 4)")
      assert.match(o.doc.log ?? "", /no such table/)
    }
    const none = await release(join(dir, "none"), undefined)
    const outcome = await c.run(predeploy(input(keys.predeploy("shop", 2), none, "web-1", 2)))
    assert.equal(outcome._tag, "Succeeded")
    assert.equal(outcome.doc.message, "no bin/pre-deploy in the release")
  })
})
