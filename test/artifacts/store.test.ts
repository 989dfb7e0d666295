import { Storage } from "@google-cloud/storage"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { pathToFileURL } from "node:url"
import { DownloadError } from "../../src/artifacts/errors.ts"
import { fileSink } from "../../src/artifacts/sink.ts"
import { makeArtifactStore } from "../../src/artifacts/store.ts"
import type { DownloadOptions } from "../../src/artifacts/store.ts"
import { eventually, sleep } from "../support/eventually.ts"
import { startFakeGcs } from "../support/gcs.ts"

// Every gs:// download in this file goes to the fake server, as an operator's emulator would.
const gcs = await startFakeGcs()
process.env.STORAGE_EMULATOR_HOST = gcs.url
test.after(() => gcs.close())

const fatal: Array<unknown> = []
process.on("unhandledRejection", (reason) => void fatal.push(reason))
process.on("uncaughtException", (error) => void fatal.push(error))

const store = makeArtifactStore({ retry: { baseDelay: "10 millis", maxDelay: "50 millis", retries: 4, stallMs: 5000 } })
/** The store streaming into a plain file: what it wrote, verified. */
const download = (url: string, dest: string, options?: DownloadOptions) =>
  store.fetch(url, async () => fileSink(dest), options).pipe(
    Effect.map(({ bytes, sha256 }) => ({ bytes, sha256 }))
  )
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex")

const scratch = async (t: { after: (f: () => Promise<void>) => void }) => {
  const dir = await mkdtemp(join(tmpdir(), "sacar-artifacts-"))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const failure = <A>(exit: Exit.Exit<A, DownloadError>): DownloadError => {
  assert.ok(Exit.isFailure(exit), "expected a failure")
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  assert.ok(error && error._tag === "Fail", "expected a typed failure")
  return error.error
}

test("the library itself downloads from the fake server (the fake speaks its protocol)", async () => {
  gcs.put("builds", "lib/check.tgz", "library bytes")
  const [data] = await new Storage({ retryOptions: { autoRetry: false } }).bucket("builds").file("lib/check.tgz")
    .download()
  assert.equal(data.toString(), "library bytes")
})

test("gs:// downloads through STORAGE_EMULATOR_HOST and verifies the checksum", async (t) => {
  const dir = await scratch(t)
  const data = Buffer.from("a".repeat(100_000))
  gcs.put("builds", "shop/abc.tgz", data)
  const dest = join(dir, "abc.tgz")
  const got = await Effect.runPromise(download("gs://builds/shop/abc.tgz", dest, { sha256: sha256(data) }))
  assert.deepEqual(got, { bytes: data.length, sha256: sha256(data) })
  assert.deepEqual(await readFile(dest), data)
  assert.deepEqual(await readdir(dir), ["abc.tgz"])
  assert.ok(gcs.requests.some((r) => r.path === "/b/builds/o/shop%2Fabc.tgz?alt=media" && r.status === 200))
})

test("two 503s, then success", async (t) => {
  const dir = await scratch(t)
  gcs.put("builds", "retry.tgz", "third time lucky")
  const before = gcs.requests.length
  gcs.failNext(2, 503)
  const got = await Effect.runPromise(download("gs://builds/retry.tgz", join(dir, "retry.tgz")))
  assert.equal(got.bytes, "third time lucky".length)
  assert.deepEqual(gcs.requests.slice(before).map((r) => r.status), [503, 503, 200])
  assert.deepEqual(fatal, [])
})

test("404 fails at once, not retryable", async (t) => {
  const dir = await scratch(t)
  const before = gcs.requests.length
  const error = failure(await Effect.runPromiseExit(download("gs://builds/missing.tgz", join(dir, "m.tgz"))))
  assert.equal(error.retryable, false)
  assert.equal(error.status, 404)
  assert.match(error.message, /not found/)
  assert.equal(gcs.requests.length - before, 1)
  assert.deepEqual(await readdir(dir), [])
})

test("a checksum mismatch fails for good and leaves no file", async (t) => {
  const dir = await scratch(t)
  gcs.put("builds", "bad.tgz", "tampered")
  const before = gcs.requests.length
  const error = failure(
    await Effect.runPromiseExit(
      download("gs://builds/bad.tgz", join(dir, "bad.tgz"), { sha256: "0".repeat(64) })
    )
  )
  assert.equal(error.retryable, false)
  assert.match(error.message, /checksum mismatch/)
  assert.equal(gcs.requests.length - before, 1)
  assert.deepEqual(await readdir(dir), [])
})

test("retries stop after the policy's limit with a retryable error", async (t) => {
  const dir = await scratch(t)
  gcs.put("builds", "down.tgz", "x")
  const before = gcs.requests.length
  gcs.failNext(5, 503)
  const error = failure(await Effect.runPromiseExit(download("gs://builds/down.tgz", join(dir, "d.tgz"))))
  assert.equal(error.retryable, true)
  assert.equal(error.status, 503)
  assert.equal(gcs.requests.length - before, 5)
})

test("interrupting a slow gs:// download neither crashes the process nor leaves a file", async (t) => {
  const dir = await scratch(t)
  const data = Buffer.alloc(200_000, 7)
  gcs.put("builds", "slow.tgz", data)
  gcs.throttle({ chunkBytes: 1000, delayMs: 20 })
  t.after(() => gcs.throttle(undefined))
  const fiber = Effect.runFork(download("gs://builds/slow.tgz", join(dir, "slow.tgz")))
  // Interrupt mid-body, once bytes are flowing...
  await eventually(
    "the transfer to start",
    async () => (await readdir(dir)).some((f) => f.endsWith(".partial")),
    10_000
  )
  await Effect.runPromise(Fiber.interrupt(fiber))
  // ...and once more before any response has arrived.
  gcs.delayHeaders(500)
  t.after(() => gcs.delayHeaders(0))
  const early = Effect.runFork(download("gs://builds/slow.tgz", join(dir, "slow2.tgz")))
  await sleep(100)
  await Effect.runPromise(Fiber.interrupt(early))
  await sleep(800)
  assert.deepEqual(fatal, [])
  assert.deepEqual(await readdir(dir), [])
})

test("https:// and file:// sources, bad URLs", async (t) => {
  const dir = await scratch(t)
  gcs.put("web", "a.tgz", "over http")
  await Effect.runPromise(download(`${gcs.url}/b/web/o/a.tgz?alt=media`, join(dir, "h.tgz")))
  assert.equal(await readFile(join(dir, "h.tgz"), "utf8"), "over http")

  const source = join(dir, "source.tgz")
  await writeFile(source, "local bytes")
  const got = await Effect.runPromise(download(pathToFileURL(source).href, join(dir, "f.tgz")))
  assert.equal(got.sha256, sha256(Buffer.from("local bytes")))

  const missing = failure(
    await Effect.runPromiseExit(download(pathToFileURL(join(dir, "nope")).href, join(dir, "n.tgz")))
  )
  assert.equal(missing.retryable, false)
  for (const url of ["ftp://x/y", "not a url", "gs://bucket-only"]) {
    const bad = failure(await Effect.runPromiseExit(download(url, join(dir, "b.tgz"))))
    assert.equal(bad.retryable, false, url)
  }
  assert.deepEqual((await readdir(dir)).sort(), ["f.tgz", "h.tgz", "source.tgz"])
})
