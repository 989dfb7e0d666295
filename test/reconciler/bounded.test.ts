// Months of failed branch builds on one node (issue 11, "Must show"): 200 releases of
// one app fail in bin/prepare with a long log; the node's disk and its status document
// stay bounded. Long-running: it prepares (and fails) 200 releases.
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { readdir } from "node:fs/promises"
import { join } from "node:path"
import { after, describe, test } from "node:test"
import { promisify } from "node:util"
import { KEEP_FAILED_LOGS } from "../../src/reconciler/plan.ts"
import { eventually } from "../support/eventually.ts"
import { writeTarball } from "../support/tarballs.ts"
import {
  appConfig,
  closeConsul,
  consul,
  freshKv,
  randomSha,
  releaseEntries,
  startReconciler,
  tempDir
} from "./harness.ts"

after(closeConsul)

const exec = promisify(execFile)
const RELEASES = 200

describe("bounded disk and status", () => {
  // Its own limit: test/run.ts gives every test 240 s, and 200 prepares take about that
  // long on a loaded 2-core machine.
  test(`${RELEASES} failed releases of one app: disk use and the status document stay bounded`, {
    timeout: 1_200_000
  }, async (t) => {
    const kv = await freshKv()
    const { addr } = await consul()
    const dir = await tempDir(t, "bounded")
    const root = join(dir, "root")
    // Each attempt: the app's dependencies, then a bin/prepare printing 8 KiB and failing.
    // The same requirements every time, as a real app's branch builds have: the first
    // releases install them with pip, and the rest get a copy of that venv
    // (steps/reuse.ts) instead of making their own: one Python start less each.
    const artifact = await writeTarball(dir, "failing.tgz", [
      ...releaseEntries({}),
      { name: "./payload.bin", content: Buffer.alloc(256 * 1024, 7) },
      {
        name: "./bin/prepare",
        mode: 0o755,
        content: "#!/bin/sh\nhead -c 8192 /dev/zero | tr '\\\\0' x\necho\necho 'DATABASE_URL is not set'\nexit 3\n"
      }
    ])
    await kv.put("shop/config", appConfig(artifact.url))
    const r = startReconciler(t, {
      addr,
      prefix: kv.prefix,
      node: "web-1",
      root,
      env: { SACAR_CONCURRENCY: "4", SACAR_LOG_LEVEL: "warn" }
    })
    const shas = Array.from({ length: RELEASES }, () => randomSha())
    const started = Date.now()
    for (const [i, sha] of shas.entries()) {
      await kv.put(`shop/releases/${sha}`, { createdAt: new Date(started + i * 1000).toISOString() })
    }

    let largest = 0
    const status = await eventually(
      "every release to fail",
      async () => {
        const raw = await kv.raw("shop/status/web-1")
        if (raw === undefined) return undefined
        largest = Math.max(largest, Buffer.byteLength(raw.value))
        const s = JSON.parse(raw.value)
        const failed = shas.filter((sha) => s.releases[sha]?.phase === "failed").length
        return failed === RELEASES ? s : undefined
      },
      1_500_000,
      r.output,
      150 // samples the status's size as it grows
    )
    for (const sha of shas.slice(-3)) assert.match(status.releases[sha].message, /exit code 3/)

    // The files of failed releases go; give the last removals a pass or two.
    const names = await eventually(
      "the failed releases' files to be removed",
      async () => {
        const left = await readdir(join(root, "shop", "releases")).catch(() => [] as string[])
        return left.length <= 1 ? left : undefined
      },
      60_000,
      r.output
    )
    const { stdout } = await exec("du", ["-sb", join(root, "shop")])
    const diskBytes = Number(stdout.split("\t")[0])
    // Once the last failures are compacted, at most the newest keep their logs.
    const { statusBytes, logs } = await eventually(
      "the status to settle",
      async () => {
        const raw = (await kv.raw("shop/status/web-1"))!
        const settled = JSON.parse(raw.value)
        const kept = Object.values(settled.releases).filter((e: any) => e.log !== undefined).length
        const bytes = Buffer.byteLength(raw.value)
        return bytes < 100 * 1024 ? { statusBytes: bytes, logs: kept } : undefined
      },
      60_000,
      r.output
    )
    console.log(
      `${RELEASES} failed releases in ${Math.round((Date.now() - started) / 1000)} s: status ${statusBytes} B ` +
        `(largest seen ${largest} B), ${logs} logs kept, ${names.length} entries in releases/, ${diskBytes} B on disk`
    )
    assert.ok(logs <= KEEP_FAILED_LOGS, `${logs} logs kept`)
    // About 270 bytes per failed release, plus the newest failures' logs: far below 512 KiB.
    assert.ok(statusBytes < 100 * 1024, `the status is ${statusBytes} bytes`)
    assert.ok(largest < 128 * 1024, `the status reached ${largest} bytes`)
    // One release unpacks to ~260 KiB; 200 of them kept would be over 50 MB.
    assert.ok(diskBytes < 5 * 1024 * 1024, `${diskBytes} bytes left under the app's directory`)
  })
})
