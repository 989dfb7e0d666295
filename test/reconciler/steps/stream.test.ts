/**
 * The artifact is streamed into extraction: one pass over the bytes hashes them,
 * unpacks them beside the release and writes the node's cache. What held when the
 * download and the extraction were two passes still holds: the same tree, nothing kept
 * of bytes that do not match, and a retry after a cut connection starts clean.
 */
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { describe, test } from "node:test"
import { promisify } from "node:util"
import { eventually } from "../../support/eventually.ts"
import { rawTarball } from "../../support/tarballs.ts"
import { failureOf, input, run, scratch, SHA, successOf } from "./harness.ts"

const exec = promisify(execFile)

/** A release with directories, an executable, a symbolic link and a file large enough to arrive in many pieces. */
const release = (): Buffer =>
  rawTarball([
    { name: "./first.txt", content: "the first entry\n" },
    { name: "./bin/", type: "dir" },
    { name: "./bin/prepare", content: "#!/bin/sh\ntrue\n", mode: 0o755 },
    { name: "./app/", type: "dir" },
    { name: "./app/main.py", content: "print('hi')\n" },
    { name: "./app/alias.py", type: "symlink", linkname: "main.py" },
    { name: "./data/", type: "dir" },
    { name: "./data/big.bin", content: randomBytes(1024 * 1024).toString("base64") }
  ])

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex")

type Handler = (req: IncomingMessage, res: ServerResponse, attempt: number) => void

/** A local artifact server; `handle` answers the n-th request (from 1). */
const serve = async (t: { after: (f: () => Promise<void>) => void }, handle: Handler) => {
  let attempts = 0
  const server = createServer((req, res) => handle(req, res, ++attempts))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  t.after(() =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  )
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/shop/app.tgz`,
    attempts: () => attempts
  }
}

/** Sends the first `bytes` of `data`, then cuts the connection. */
const cutAfter = (res: ServerResponse, data: Buffer, bytes: number) => {
  res.writeHead(200, { "content-length": data.length })
  res.write(data.subarray(0, bytes), () => setTimeout(() => res.socket?.destroy(), 20))
}

/** Every entry under `dir` but Sacar's own: type, mode, and content digest or link target. */
const treeOf = async (dir: string, at = ""): Promise<Array<string>> => {
  const rows: Array<string> = []
  for (const name of (await readdir(join(dir, at))).sort()) {
    const path = join(at, name)
    if (path === ".sacar" || path === ".venv") continue
    const info = await lstat(join(dir, path))
    const mode = (info.mode & 0o7777).toString(8)
    if (info.isSymbolicLink()) rows.push(`${path} link ${await readlink(join(dir, path))}`)
    else if (info.isDirectory()) rows.push(`${path}/ ${mode}`, ...(await treeOf(dir, path)))
    else rows.push(`${path} ${mode} ${sha256(await readFile(join(dir, path)))}`)
  }
  return rows
}

/** The tree `tar xzf` makes of the same bytes. */
const referenceTree = async (dir: string, data: Buffer) => {
  const out = join(dir, "reference")
  await mkdir(out)
  await writeFile(join(dir, "reference.tgz"), data)
  await exec("tar", ["xzf", join(dir, "reference.tgz"), "-C", out])
  return treeOf(out)
}

const releases = (root: string) => join(root, "shop", "releases")
const cacheDir = (root: string) => join(root, ".sacar", "artifacts")
const list = (dir: string) => readdir(dir).catch(() => [] as Array<string>)

describe("the download streamed into extraction", { concurrency: true }, () => {
  test("files are unpacked while the body is still arriving, and the tree is the one tar xzf makes", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const data = release()
    let rest: (() => void) | undefined
    const server = await serve(t, (_req, res) => {
      res.writeHead(200, { "content-length": data.length })
      // The head of the archive now; the rest only once the test has seen files unpacked.
      res.write(data.subarray(0, 64 * 1024))
      rest = () => res.end(data.subarray(64 * 1024))
    })
    const artifact = { url: server.url, sha256: sha256(data) }
    const running = run(input(root, server.url, { artifact }))

    // The body's head alone unpacks first.txt (the test sends the rest only afterwards).
    await eventually("first.txt unpacked before the body ended", async () => {
      const staging = (await list(releases(root))).filter((name) => name.endsWith(".extract"))
      for (const name of staging) if ((await list(join(releases(root), name))).includes("first.txt")) return true
      return false
    }).finally(() => rest?.())
    assert.ok(rest !== undefined, "the artifact was requested")

    const ready = successOf((await running).exit)
    assert.deepEqual(await treeOf(ready.dir), await referenceTree(dir, data))
    assert.deepEqual(await list(releases(root)), [SHA])
    assert.deepEqual(await list(cacheDir(root)), [`${artifact.sha256}.tgz`])
    assert.deepEqual(await readFile(join(cacheDir(root), `${artifact.sha256}.tgz`)), data)
  })

  test("a sha256 mismatch leaves neither a release nor a cache entry", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const data = release()
    const server = await serve(t, (_req, res) => void res.end(data))
    const wrong = "0".repeat(64)
    const result = await run(input(root, server.url, { artifact: { url: server.url, sha256: wrong } }))
    const error = failureOf(result.exit)
    assert.equal(error._tag, "ArtifactUnavailable")
    assert.equal(error.step, "download")
    assert.equal(error.retryable, false)
    assert.match(error.message, new RegExp(`expected sha256 ${wrong}, got ${sha256(data)}`))
    assert.deepEqual(result.events.at(-1), ["download", "Failed"])
    assert.equal(server.attempts(), 1)
    assert.deepEqual(await list(releases(root)), [])
    assert.deepEqual(await list(cacheDir(root)), [])
  })

  test("a connection cut mid-body: the retry starts clean and the release is whole", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const data = release()
    const seenAtRetry: Array<ReadonlyArray<string>> = []
    const server = await serve(t, (_req, res, attempt) => {
      if (attempt === 1) return cutAfter(res, data, 256 * 1024)
      // What the first attempt left, as the second begins.
      void Promise.all([list(releases(root)), list(cacheDir(root))]).then((seen) => {
        seenAtRetry.push(seen.flat())
        res.end(data)
      })
    })
    const artifact = { url: server.url, sha256: sha256(data) }
    const ready = successOf((await run(input(root, server.url, { artifact }))).exit)
    assert.equal(server.attempts(), 2)
    // The cut attempt's staging directory and partial cache file were gone before the retry.
    assert.deepEqual(seenAtRetry, [[]])
    assert.deepEqual(await treeOf(ready.dir), await referenceTree(dir, data))
    assert.deepEqual(await list(releases(root)), [SHA])
    assert.deepEqual(await list(cacheDir(root)), [`${artifact.sha256}.tgz`])
  })

  test("a connection cut on every attempt: the release fails retryable and nothing is left", async (t) => {
    const dir = await scratch(t)
    const root = join(dir, "root")
    const data = release()
    const server = await serve(t, (_req, res) => cutAfter(res, data, 256 * 1024))
    const result = await run(input(root, server.url, { artifact: { url: server.url, sha256: sha256(data) } }))
    const error = failureOf(result.exit)
    assert.equal(error.step, "download")
    assert.equal(error.retryable, true)
    assert.equal(server.attempts(), 4) // the first and the helpers' 3 retries
    assert.deepEqual(await list(releases(root)), [])
    assert.deepEqual(await list(cacheDir(root)), [])
  })
})
