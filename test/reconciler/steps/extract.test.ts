import assert from "node:assert/strict"
import { access, mkdir, readFile, readlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, test } from "node:test"
import { pathToFileURL } from "node:url"
import { buildReleaseTarball, hostileTarballs, rawTarball } from "../../support/tarballs.ts"
import { failureOf, input, run, scratch, snapshot, successOf } from "./harness.ts"

describe("hostile tarballs", { concurrency: true }, () => {
  for (const hostile of hostileTarballs()) {
    test(`${hostile.name}: refused, entry named, nothing written outside the release`, async (t) => {
      const dir = await scratch(t)
      const root = join(dir, "root")
      await mkdir(join(root, "shop"), { recursive: true })
      await writeFile(join(root, "shop", "keep.txt"), "operator file")
      const source = join(dir, "hostile.tgz")
      await writeFile(source, hostile.bytes)
      const before = await snapshot(dir)

      const result = await run(input(root, pathToFileURL(source).href))
      const error = failureOf(result.exit)
      assert.equal(error._tag, "ArchiveRejected", error.message)
      assert.equal(error.step, "extract")
      assert.equal(error.retryable, false)
      assert.match(error.message, hostile.problem)
      if (hostile.entry !== undefined) {
        assert.ok(error._tag === "ArchiveRejected" && error.entry === hostile.entry, `entry: ${JSON.stringify(error)}`)
        assert.ok(error.message.includes(JSON.stringify(hostile.entry)), error.message)
      }
      assert.deepEqual(result.events.at(-1), ["extract", "Failed"])

      // Only the (empty) releases directory is new; no release, no tarball, no temp dir.
      const after = await snapshot(dir)
      assert.deepEqual(after, [...before, join("root", "shop", "releases")].sort())
      await assert.rejects(access("/etc/sacar-test-evil"))
    })
  }

  test("limits on entry count and total size", async (t) => {
    const dir = await scratch(t)
    const many = join(dir, "many.tgz")
    await writeFile(many, rawTarball(Array.from({ length: 20 }, (_, i) => ({ name: `./f${i}`, content: "x" }))))
    const tooMany = failureOf(
      (await run(input(join(dir, "a"), pathToFileURL(many).href, { extractLimits: { maxEntries: 10, maxBytes: 1e9 } })))
        .exit
    )
    assert.equal(tooMany._tag, "ArchiveRejected")
    assert.match(tooMany.message, /more than 10 entries \(at entry "\.\/f10"\)/)

    const big = join(dir, "big.tgz")
    await writeFile(big, rawTarball([{ name: "./big", content: "y".repeat(5000) }]))
    const tooBig = failureOf(
      (await run(input(join(dir, "b"), pathToFileURL(big).href, { extractLimits: { maxEntries: 10, maxBytes: 4096 } })))
        .exit
    )
    assert.equal(tooBig._tag, "ArchiveRejected")
    assert.match(tooBig.message, /more than 4096 bytes/)
  })

  test("links that stay inside the release are kept", async (t) => {
    const dir = await scratch(t)
    const source = join(dir, "links.tgz")
    await writeFile(
      source,
      rawTarball([
        { name: "./requirements.txt", content: "\n" },
        { name: "./app/", type: "dir" },
        { name: "./app/real.txt", content: "real" },
        { name: "./app/alias.txt", type: "symlink", linkname: "real.txt" },
        { name: "./top", type: "symlink", linkname: "app/../app/real.txt" }
      ])
    )
    const root = join(dir, "root")
    const ready = successOf((await run(input(root, pathToFileURL(source).href))).exit)
    assert.equal(await readlink(join(ready.dir, "app", "alias.txt")), "real.txt")
    assert.equal(await readlink(join(ready.dir, "top")), "app/../app/real.txt")
    assert.equal(await readFile(join(ready.dir, "top"), "utf8"), "real", "the link resolves inside the release")
  })

  test("a tarball built the usual way (./ entries, node-tar) passes", async (t) => {
    const dir = await scratch(t)
    const tarball = await buildReleaseTarball(join(dir, "ok.tgz"), {
      requirements: null,
      files: { "app/x.py": "x = 1\n" }
    })
    const ready = successOf((await run(input(join(dir, "root"), pathToFileURL(tarball.path).href))).exit)
    assert.equal(await readFile(join(ready.dir, "app", "x.py"), "utf8"), "x = 1\n")
  })
})
