import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { chmod, cp, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, test, type TestContext } from "node:test"
import * as tar from "tar"
import { buildExampleWheels } from "../../examples/wheels.ts"
import { main } from "../../src/cli/pack.ts"
import { planInstall } from "../../src/python/wheel-installer.ts"
import { exampleDir, packExample } from "../support/example.ts"
import { nodePython } from "../support/node-python.ts"
import { buildWheel } from "../support/wheels.ts"

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sacar-pack-test-"))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** examples/shop without its vendored wheels/, plus a separate find-links directory. */
async function shopCopy(t: TestContext): Promise<{ project: string; wheels: string; root: string }> {
  const root = await tempDir(t)
  const project = join(root, "shop")
  await cp(exampleDir, project, { recursive: true, filter: (src) => src !== join(exampleDir, "wheels") })
  const wheels = join(root, "find-links")
  await buildExampleWheels(wheels)
  return { project, wheels, root }
}

/**
 * The example packed once for the file: the two tests that read a packed example share
 * it (each `pip wheel` run costs a CPU-second), and the reproducibility test packs a
 * second one of its own to compare with it.
 */
let examplePacked: Promise<{ path: string; sha256: string; size: number }> | undefined
let packedDir: string | undefined
const packedExample = () =>
  examplePacked ??= mkdtemp(join(tmpdir(), "sacar-pack-test-")).then((dir) => {
    packedDir = dir
    return packExample(dir)
  })
after(() => packedDir === undefined ? undefined : rm(packedDir, { recursive: true, force: true }))

async function runPack(argv: string[], env: NodeJS.ProcessEnv = process.env) {
  let stdout = ""
  let stderr = ""
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env })
  return { code, stdout, stderr }
}

async function listing(path: string): Promise<Map<string, tar.ReadEntry>> {
  const entries = new Map<string, tar.ReadEntry>()
  await tar.t({ file: path, onReadEntry: (e) => void entries.set(e.path, e) })
  return entries
}

test("the example's committed wheels are exactly what examples/wheels.ts generates", async (t) => {
  const fresh = join(await tempDir(t), "wheels")
  const written = await buildExampleWheels(fresh)
  assert.equal(written.length, 2)
  for (const path of written) {
    const name = path.slice(path.lastIndexOf("/") + 1)
    assert.deepEqual(await readFile(path), await readFile(join(exampleDir, "wheels", name)), name)
  }
})

test("packing the example twice gives byte-identical tarballs", async (t) => {
  const a = await packedExample()
  const b = await packExample(await tempDir(t))
  assert.match(a.sha256, /^[0-9a-f]{64}$/)
  assert.equal(a.sha256, b.sha256)
  assert.deepEqual(await readFile(a.path), await readFile(b.path))
})

test("file times, permissions beyond the x bit and bytecode do not change the bytes", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  const args = (out: string) => [project, "-o", join(root, out), "--no-index", "--find-links", wheels]
  const first = await runPack(args("first.tgz"))
  assert.equal(first.code, 0, first.stderr)

  await utimes(join(project, "shop", "app.py"), new Date("2030-01-01"), new Date("2030-01-01"))
  await chmod(join(project, "shop", "app.py"), 0o600)
  await chmod(join(project, "bin", "prepare"), 0o700)
  await mkdir(join(project, "shop", "__pycache__"))
  await writeFile(join(project, "shop", "__pycache__", "app.cpython-311.pyc"), "bytecode")
  await writeFile(join(project, "shop", "stray.pyc"), "bytecode")
  await mkdir(join(project, ".git"))
  await writeFile(join(project, ".git", "HEAD"), "ref: refs/heads/main\n")
  await mkdir(join(project, ".venv", "bin"), { recursive: true })
  await writeFile(join(project, ".venv", "bin", "python"), "")
  const second = await runPack(args("second.tgz"))
  assert.equal(second.code, 0, second.stderr)

  assert.equal(second.stdout.match(/sha256 (\w+)/)?.[1], first.stdout.match(/sha256 (\w+)/)?.[1])
  assert.deepEqual(await readFile(join(root, "second.tgz")), await readFile(join(root, "first.tgz")))
})

test("the tarball holds the contract layout with normalised metadata, sorted", async () => {
  const { path } = await packedExample()
  const entries = await listing(path)
  const names = [...entries.keys()]
  for (
    const name of [
      "requirements.txt",
      "bin/deploy",
      "bin/prepare",
      "bin/pre-deploy",
      "python-version",
      "wheels/greeting-1.0-py3-none-any.whl",
      "wheels/textcase-1.2-py3-none-any.whl",
      "shop/app.py"
    ]
  ) {
    assert.ok(entries.has(name), `${name} missing from ${names.join(", ")}`)
  }
  assert.deepEqual(
    names.filter((n) => n.startsWith("wheels/") && n.endsWith(".whl")),
    ["wheels/greeting-1.0-py3-none-any.whl", "wheels/textcase-1.2-py3-none-any.whl"]
  )
  assert.deepEqual(
    names,
    [...names].sort((x, y) => Buffer.compare(Buffer.from(x.replace(/\/$/, "")), Buffer.from(y.replace(/\/$/, ""))))
  )
  assert.ok(!names.some((n) => n.startsWith("/") || n.split("/").includes("..")))
  for (const [name, e] of entries) {
    assert.equal(e.uid, 0, name)
    assert.equal(e.gid, 0, name)
    assert.equal(e.uname ?? "", "", name)
    assert.equal(e.mtime?.getTime(), 0, name)
    const expected = e.type === "Directory" || name.startsWith("bin/") ? 0o755 : 0o644
    assert.equal((e.mode ?? 0) & 0o7777, expected, `${name} mode ${(e.mode ?? 0).toString(8)}`)
  }
  const gz = await readFile(path)
  assert.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3], "gzip header without name or time")
})

test("a packed tarball is installed without pip: one version of each distribution, nothing for pip to choose", async (t) => {
  const { path } = await packedExample()
  const release = await tempDir(t)
  await tar.x({ file: path, cwd: release })
  const { interpreter } = await nodePython()
  const plan = await Effect.runPromise(planInstall(interpreter, { cwd: release, env: { PATH: "/usr/bin:/bin" } }))
  const requested = (await readFile(join(release, "requirements.txt"), "utf8")).split("\n").map((l) =>
    l.replace(/#.*/, "").trim().split(/[<>=!~; ]/)[0]!
  ).filter((n) => n !== "")
  assert.deepEqual(plan, {
    _tag: "Direct",
    wheels: [
      { path: "wheels/greeting-1.0-py3-none-any.whl", requested: requested.includes("greeting") },
      { path: "wheels/textcase-1.2-py3-none-any.whl", requested: requested.includes("textcase") }
    ]
  })
})

test("offline with --no-index --find-links; without the wheels it fails with pip's reason", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  const ok = await runPack([project, "-o", join(root, "app.tgz"), "--no-index", "--find-links", wheels])
  assert.equal(ok.code, 0, ok.stderr)
  assert.match(ok.stdout, /^sha256 [0-9a-f]{64}$/m)
  assert.match(ok.stdout, /^size \d+$/m)
  const entries = await listing(join(root, "app.tgz"))
  assert.ok(entries.has("wheels/greeting-1.0-py3-none-any.whl"))

  const missing = await runPack([project, "-o", join(root, "none.tgz"), "--no-index"])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /greeting/)
  await assert.rejects(stat(join(root, "none.tgz")))
})

test("refuses a project without bin/deploy", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  await rm(join(project, "bin", "deploy"))
  const r = await runPack([project, "-o", join(root, "app.tgz"), "--no-index", "--find-links", wheels])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /no bin\/deploy/)
  await assert.rejects(stat(join(root, "app.tgz")))
})

test("writes python-version from the interpreter when the project has none", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  await rm(join(project, "python-version"), { force: true })
  const r = await runPack([project, "-o", join(root, "app.tgz"), "--no-index", "--find-links", wheels])
  assert.equal(r.code, 0, r.stderr)
  const extracted = join(root, "x")
  await mkdir(extracted)
  await tar.x({ file: join(root, "app.tgz"), cwd: extracted, strict: true })
  assert.match(await readFile(join(extracted, "python-version"), "utf8"), /^3\.\d+\n$/)
})

test("--python-version must agree with the project's python-version file", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  await writeFile(join(project, "python-version"), "3.7\n")
  const r = await runPack([
    project,
    "-o",
    join(root, "app.tgz"),
    "--python-version",
    "3.11",
    "--find-links",
    wheels,
    "--no-index"
  ])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /disagrees/)
})

test("a wheel pip cannot install here fails the pack, naming the wheel's project", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  await buildWheel({
    dir: wheels,
    name: "winonly",
    version: "0.1",
    tag: "py3-none-win32",
    modules: { "winonly.py": "" }
  })
  await writeFile(join(project, "requirements.txt"), "greeting==1.0\nwinonly==0.1\n")
  const r = await runPack([project, "-o", join(root, "app.tgz"), "--no-index", "--find-links", wheels])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /winonly/)
  await assert.rejects(stat(join(root, "app.tgz")))
})

test("an output file inside the project is not packed into the next tarball", async (t) => {
  const { project, wheels } = await shopCopy(t)
  const args = [project, "-o", join(project, "app.tgz"), "--no-index", "--find-links", wheels]
  const first = await runPack(args)
  const second = await runPack(args)
  assert.equal(first.code, 0, first.stderr)
  assert.equal(second.stdout, first.stdout)
  assert.ok(!(await listing(join(project, "app.tgz"))).has("app.tgz"))
})

test("SOURCE_DATE_EPOCH sets every entry's mtime", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  const r = await runPack([project, "-o", join(root, "app.tgz"), "--no-index", "--find-links", wheels], {
    ...process.env,
    SOURCE_DATE_EPOCH: "1700000000"
  })
  assert.equal(r.code, 0, r.stderr)
  for (const e of (await listing(join(root, "app.tgz"))).values()) assert.equal(e.mtime?.getTime(), 1700000000 * 1000)
  const bad = await runPack([project, "-o", join(root, "bad.tgz")], { ...process.env, SOURCE_DATE_EPOCH: "yesterday" })
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /SOURCE_DATE_EPOCH/)
})

test("usage: --help exits 0 with examples, a missing -o exits 2", async () => {
  const help = await runPack(["--help"])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Examples:\n\s+sacar pack/)
  const noOut = await runPack(["."])
  assert.equal(noOut.code, 2)
  assert.match(noOut.stderr, /-o/)
  const badVersion = await runPack([".", "-o", "x.tgz", "--python-version", "three"])
  assert.equal(badVersion.code, 2)
})

test("the project's own wheels/ is a source: only the wheels the requirements need ship", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  await cp(wheels, join(project, "wheels"), { recursive: true })
  await buildWheel({ dir: join(project, "wheels"), name: "unused", version: "9.9", modules: { "unused.py": "" } })
  const r = await runPack([project, "-o", join(root, "app.tgz"), "--no-index"])
  assert.equal(r.code, 0, r.stderr)
  const names = [...(await listing(join(root, "app.tgz"))).keys()].filter((n) => n.startsWith("wheels/"))
  assert.deepEqual(names, ["wheels/", "wheels/greeting-1.0-py3-none-any.whl", "wheels/textcase-1.2-py3-none-any.whl"])
})

test("links inside the project are kept as links; a link out of it is refused", async (t) => {
  const { project, wheels, root } = await shopCopy(t)
  await symlink("app.py", join(project, "shop", "main.py"))
  const ok = await runPack([project, "-o", join(root, "app.tgz"), "--no-index", "--find-links", wheels])
  assert.equal(ok.code, 0, ok.stderr)
  const link = (await listing(join(root, "app.tgz"))).get("shop/main.py")
  assert.equal(link?.type, "SymbolicLink")
  assert.equal(link?.linkpath, "app.py")

  await symlink("../../outside", join(project, "shop", "escape"))
  const bad = await runPack([project, "-o", join(root, "bad.tgz"), "--no-index", "--find-links", wheels])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /shop\/escape links to \.\.\/\.\.\/outside, outside the project/)
})

test("an app without dependencies packs with an empty wheels/ and no pip run", async (t) => {
  const { project, root } = await shopCopy(t)
  await writeFile(join(project, "requirements.txt"), "# nothing needed\n\n")
  const r = await runPack([project, "-o", join(root, "app.tgz"), "--no-index"])
  assert.equal(r.code, 0, r.stderr)
  const names = [...(await listing(join(root, "app.tgz"))).keys()]
  assert.deepEqual(names.filter((n) => n.startsWith("wheels")), ["wheels/"])
  assert.ok(names.includes("requirements.txt"))
})

test("an output directory that does not exist is a usage error, found before any build", async (t) => {
  const { project, root } = await shopCopy(t)
  const r = await runPack([project, "-o", join(root, "missing", "app.tgz")])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /missing is not a directory/)
})
