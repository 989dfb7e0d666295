/** Settings that would hurt are refused before anything is written. */
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { runSacar } from "../support/sacar.ts"
import { assertNoStack, kvGet, kvKeys, kvPut, SHA_A, world } from "./harness.ts"

describe("settings that would hurt are refused", { concurrency: true }, () => {
  test("an empty --nodes is refused (exit 2) and the config keeps its node list", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz", "--nodes", "web-*")).code, 0)
    for (const nodes of ["", " , "]) {
      const r = await sacar("app", "set", "shop", "--nodes", nodes)
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /--nodes needs at least one node name or glob/)
    }
    assert.deepEqual(JSON.parse((await kvGet(`${prefix}/shop/config`))!).nodes, ["web-*"])
  })

  test("a SACAR_PREFIX the components would refuse is refused by the CLI too: exit 2, one line, nothing written", async () => {
    const { prefix, env } = world()
    for (const bad of ["../sacar", "/sacar", "sacar/../other", "with space"]) {
      const r = await runSacar(["app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz"], {
        ...env(),
        SACAR_PREFIX: bad
      })
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`)
      assert.match(r.stderr, /^sacar app: SACAR_PREFIX must be a KV path/)
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr)
      assertNoStack(r.stderr, `SACAR_PREFIX=${bad}`)
    }
    assert.deepEqual(await kvKeys(prefix), [])
  })

  test("a bad duration is a usage error: exit 2, nothing written", async () => {
    const { prefix, sacar } = world()
    for (const args of [["--prepare-timeout", "soon"], ["--deploy-timeout", "3d"]]) {
      const r = await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz", ...args)
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, new RegExp(`${args[0]} must be a duration such as 90s, 15m or 1h30m`))
    }
    assert.deepEqual(await kvKeys(prefix), [])
  })

  test("artifact templates with a scheme Sacar cannot fetch are refused", async () => {
    const { prefix, sacar } = world()
    const r = await sacar("app", "set", "shop", "--artifact", "ftp://builds/{sha}.tgz")
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /scheme ftp:; use gs:\/\/, https:\/\/ or file:\/\//)
    const typo = await sacar("app", "set", "shop", "--artifact", "gs://b/{sah}.tgz")
    assert.equal(typo.code, 2, typo.stderr)
    assert.match(typo.stderr, /unknown placeholder/)
    assert.deepEqual(await kvKeys(prefix), [])
    assert.equal((await sacar("app", "set", "shop", "--artifact", "gs://b/{app}/{short}-{sha}.tgz")).code, 0)
  })

  test("an unknown field in a document the CLI writes is refused, naming the field", async () => {
    const { prefix, sacar } = world()
    // A typo an operator made with `consul kv put`: the CLI must not carry it along silently.
    await kvPut(`${prefix}/shop/config`, JSON.stringify({ artifact: "file:///srv/{sha}.tgz", maxParalel: 2 }))
    const r = await sacar("app", "set", "shop", "--keep", "3")
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /sacar\/shop\/config|shop\/config/)
    assert.match(r.stderr, /"maxParalel"/)
    assertNoStack(r.stderr, "app set")
    assert.equal(JSON.parse((await kvGet(`${prefix}/shop/config`))!).keepReleases, undefined)
  })

  test("lock --help offers only forms --until accepts, and each of them works", async () => {
    const { sacar } = world()
    const help = await sacar("lock", "--help")
    assert.equal(help.code, 0)
    assert.doesNotMatch(help.stdout, /\b\d+d\b/, "days are not a duration --until accepts")
    const forms = [...help.stdout.matchAll(/--until (\S+)/g)].map((m) => m[1]!).filter((f) => !f.startsWith("TIME"))
    assert.ok(forms.length >= 2, help.stdout)
    const { prefix: _p, sacar: other } = world()
    assert.equal((await other("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    for (const form of forms) {
      const r = await other("lock", "shop", "-m", "freeze", "--until", form)
      assert.equal(r.code, 0, `--until ${form}: ${r.stderr}`)
    }
  })

  test("locking an app someone else locked says so and needs --force, which replaces their lock", async () => {
    const { prefix, sacar, sacarAs } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    assert.equal((await sacarAs("bob", "lock", "shop", "-m", "incident 4711")).code, 0)
    const refused = await sacar("lock", "shop", "-m", "black friday")
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /shop is already locked by bob: incident 4711/)
    assert.match(refused.stderr, /--force/)
    assert.equal(JSON.parse((await kvGet(`${prefix}/shop/lock`))!).by, "bob")
    // One's own lock may be changed without --force (a new reason, a new end).
    assert.equal((await sacarAs("bob", "lock", "shop", "-m", "incident 4711, still")).code, 0)
    const forced = await sacar("lock", "shop", "-m", "black friday", "--force")
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(forced.stdout, /replaced bob's lock/)
    const lock = JSON.parse((await kvGet(`${prefix}/shop/lock`))!)
    assert.deepEqual({ by: lock.by, reason: lock.reason }, { by: "alice", reason: "black friday" })
  })

  test("release --sha256 without --artifact pins the checksum of the app's template", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "gs://acme/{app}/{sha}.tgz")).code, 0)
    const r = await sacar("release", "shop", SHA_A, "--sha256", "c".repeat(64))
    assert.equal(r.code, 0, r.stderr)
    const spec = JSON.parse((await kvGet(`${prefix}/shop/releases/${SHA_A}`))!)
    assert.deepEqual(spec.artifact, { url: `gs://acme/shop/${SHA_A}.tgz`, sha256: "c".repeat(64) })
    // Without a template there is nothing to check the sum against: said plainly.
    await kvPut(`${prefix}/bare/config`, "{}")
    const bare = await sacar("release", "bare", SHA_A, "--sha256", "c".repeat(64))
    assert.equal(bare.code, 2, bare.stderr)
    assert.match(bare.stderr, /bare has no artifact template; give --artifact URL with --sha256/)
  })
})
