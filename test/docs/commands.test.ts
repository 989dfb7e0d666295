/**
 * Every command in README.md, docs/ and examples/ runs, against one demo (issue 16):
 * the fenced shell blocks are extracted and run in order, in one shell per block,
 * with `npx sacar` and `sacar` the project's own and `consul kv` a small shim over the
 * demo's Consul. Placeholders (<sha>, <hex>, the printed address) become the demo's
 * real values. What cannot run here is in SKIPPED, each with its reason; the test
 * checks that list stays short and that every entry still matches a command.
 * Synopsis blocks (README's command list) are checked against each command's --help.
 * The same demo, run with --keep-running as docs/demo.md suggests, also shows that the
 * commands it prints work and that Ctrl-C ends it cleanly: one demo for both, since
 * each costs the suite a controller, three reconcilers and three prepares.
 */
import assert from "node:assert/strict"
import { type ChildProcess, spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, test } from "node:test"
import { fileURLToPath } from "node:url"
import { assertNothingLeft } from "../demo/harness.ts"
import { nodePython } from "../support/node-python.ts"
import { sacarInOne } from "../support/sacar-in-one.ts"
import { childEnv, runSacar, SACAR_BIN } from "../support/sacar.ts"
import { type Block, blocksOf, docFiles } from "./blocks.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "")
const CONSUL_SHIM = fileURLToPath(new URL("./consul-kv.ts", import.meta.url))

/**
 * Commands that cannot run on this machine, matched by a substring; each says where it
 * is covered instead. `block: true` skips the whole block the command is in (its other
 * lines only make sense after it, and some touch system paths such as /usr/local).
 */
const SKIPPED: ReadonlyArray<{ readonly match: string | RegExp; readonly reason: string; readonly block?: boolean }> = [
  { match: "make test", reason: "runs the whole suite, this test included" },
  { match: "make demo", reason: "a second demo beside the one this test runs under; test/demo/demo.test.ts runs it" },
  { match: "sacar demo", reason: "a second demo beside the one this test runs under; test/demo/demo.test.ts runs it" },
  { match: "--watch", reason: "redraws until Ctrl-C; test/cli/follow.test.ts drives status --watch" },
  {
    match: "$(nomad node status",
    reason: "a policy and token per node of a Nomad cluster, in a Consul with ACLs; test/deploy/acl-e2e.test.ts",
    block: true
  },
  { match: "nomad ", reason: "no Nomad cluster here; test/deploy checks the job files and the ACL policies" },
  { match: "consul acl", reason: "needs a Consul with ACLs and a management token; test/deploy/acl.test.ts" },
  {
    match: "linux-x64.tar.gz",
    reason:
      "builds, uploads or installs Sacar's tarball (under /usr/local); test/bundle/dist.test.ts builds and runs it",
    block: true
  },
  { match: "sacar controller", reason: "a long-running component with secrets' files; test/controller starts it" },
  { match: "sacar.example.com", reason: "a placeholder host; test/controller/notify.test.ts posts the same body" },
  {
    match: "sacar pack . ",
    reason: "packs a Python project in the current folder from PyPI; examples' pack runs here"
  },
  { match: / &(\s|$)/, reason: "its own Consul and reconciler in the background; the demo's stand in for them" }
]
const MAX_SKIPPED = 12

const matches = (line: string, match: string | RegExp) =>
  typeof match === "string" ? line.includes(match) : match.test(line)
const skipOf = (line: string) =>
  SKIPPED.find((s) => s.block === true && matches(line, s.match)) ?? SKIPPED.find((s) => matches(line, s.match))

/** The lines of a block that run here: none when a block-wide skip matches. */
const runnable = (block: Block): ReadonlyArray<string> =>
  block.lines.some((l) => skipOf(l)?.block === true) ? [] : block.lines.filter((l) => skipOf(l) === undefined)

let dir = ""
let demo: ChildProcess | undefined
let demoOut = ""
let demoExit: Promise<number | null> | undefined
const values = { addr: "", controller: "", sha: "", sha2: randomBytes(20).toString("hex"), sha256: "" }

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sacar-docs-"))
  // The docs' relative paths: examples/ and .demo/ as seen from a clone's root.
  await symlink(join(ROOT, "examples"), join(dir, "examples"))
  await symlink(join(ROOT, "deploy"), join(dir, "deploy"))
  const bin = join(dir, ".bin")
  await mkdir(bin)
  const node = process.execPath
  await writeFile(join(bin, "sacar"), `#!/bin/sh\nexec "${node}" "${SACAR_BIN}" "$@"\n`)
  await writeFile(
    join(bin, "npx"),
    `#!/bin/sh\nif [ "$1" = sacar ]; then shift; exec "${node}" "${SACAR_BIN}" "$@"; fi\necho "npx $1: not available in the docs test" >&2\nexit 127\n`
  )
  // The docs run `consul kv` about twenty times: Node's compile cache spares each start
  // stripping the shim's types again.
  await writeFile(
    join(bin, "consul"),
    `#!/bin/sh\nNODE_COMPILE_CACHE="${join(dir, ".node-cache")}" exec "${node}" "${CONSUL_SHIM}" "$@"\n`
  )
  for (const f of ["sacar", "npx", "consul"]) await chmod(join(bin, f), 0o755)

  // The demo's reconcilers run every pythonX.Y on their PATH at start-up: a PATH with the
  // machine's Pythons, as test nodes get, not a developer's pyenv shims (3 CPU-s each).
  const env = childEnv({ CONSUL_HTTP_ADDR: undefined, SACAR_PREFIX: undefined, PATH: (await nodePython()).path })
  delete env.CONSUL_HTTP_ADDR
  delete env.SACAR_PREFIX
  demo = spawn(process.execPath, [SACAR_BIN, "demo", "--keep-running", "--dir", join(dir, ".demo")], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  demo.stdout!.setEncoding("utf8").on("data", (d: string) => (demoOut += d))
  demo.stderr!.setEncoding("utf8").on("data", (d: string) => (demoOut += d))
  demoExit = new Promise((resolve) => demo!.once("close", (code) => resolve(code)))
  const deadline = Date.now() + 240_000
  while (!/Everything stays up until Ctrl-C/.test(demoOut)) {
    if (demo.exitCode !== null || Date.now() > deadline) throw new Error(`the demo did not come up:\n${demoOut}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  values.addr = /export CONSUL_HTTP_ADDR=(\S+)/.exec(demoOut)![1]!
  values.sha = /^release\s+([0-9a-f]{40})/m.exec(demoOut)![1]!
  values.controller = /controller:\s+(http:\/\/\S+)\/healthz/.exec(demoOut)![1]!
  const tarball = await readFile(join(dir, ".demo", "artifacts", `${values.sha}.tgz`))
  values.sha256 = createHash("sha256").update(tarball).digest("hex")
})

after(async () => {
  if (demo !== undefined && demo.exitCode === null) {
    demo.kill("SIGKILL")
    await demoExit
  }
  await rm(dir, { recursive: true, force: true })
})

/** The doc's placeholders as the demo's real values; /tmp/ as this test's own folder. */
const concrete = (line: string): string =>
  line
    .replaceAll("<sha2>", values.sha2)
    .replaceAll("<sha256 from pack>", values.sha256)
    .replaceAll("<64 hex>", values.sha256)
    .replaceAll("<hex>", values.sha256)
    .replaceAll("<40 hex>", values.sha)
    .replaceAll("<sha>", values.sha)
    .replace(/http:\/\/127\.0\.0\.1:41234/g, values.addr)
    .replaceAll("http://127.0.0.1:<port>", values.controller)
    .replace(/(^|[\s'"=:])\/tmp\//g, `$1${dir}/tmp/`)
    // A node's own status key: the demo's nodes are demo-1..3, not this host.
    .replaceAll("$(hostname)", "demo-1")

const runBlock = (block: Block, lines: ReadonlyArray<string>, path: string) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const script = ["set -ex", ...lines.map(concrete)].join("\n")
    const child = spawn("sh", ["-c", script], {
      cwd: dir,
      env: childEnv({
        // The machine's Pythons, as the demo's nodes get: `python3` through pyenv's shims
        // is a few bash scripts before every Python start.
        PATH: `${join(dir, ".bin")}:${path}`,
        CONSUL_HTTP_ADDR: values.addr,
        SACAR_USER: "docs-test",
        SHA: values.sha,
        // examples' scripts run by hand keep their database inside this test's folder.
        SHOP_DATA_DIR: join(dir, "shop-data")
      }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), 180_000)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, output: `${block.where}\n${output}` })
    })
  })

const blocks = docFiles(ROOT).flatMap((file) => blocksOf(ROOT, file))

test("the skip list is short, justified, and every entry still matches a documented command", () => {
  assert.ok(SKIPPED.length <= MAX_SKIPPED, `${SKIPPED.length} skipped patterns; at most ${MAX_SKIPPED}`)
  const all = blocks.filter((b) => b.kind === "commands").flatMap((b) => b.lines)
  for (const s of SKIPPED) {
    assert.ok(s.reason.length > 20, `${String(s.match)}: say why it cannot run here`)
    assert.ok(all.some((l) => matches(l, s.match)), `${String(s.match)} matches no documented command any more`)
  }
  const ran = blocks.filter((b) => b.kind === "commands").flatMap(runnable)
  assert.ok(ran.length > all.length - ran.length, `${ran.length} run, ${all.length - ran.length} skipped`)
})

// Before the documented commands, which reconfigure the demo's app.
test("--keep-running keeps everything up for the commands it prints", async () => {
  const status = await runSacar(["status", "shop", "--json"], { CONSUL_HTTP_ADDR: values.addr })
  assert.equal(status.code, 0, status.stderr)
  const report = JSON.parse(status.stdout) as { apps: Array<{ nodes: Record<string, { current: string | null }> }> }
  assert.deepEqual(
    Object.entries(report.apps[0]!.nodes).map(([n, s]) => [n, s.current]).sort(),
    [["demo-1", values.sha], ["demo-2", values.sha], ["demo-3", values.sha]]
  )
  assert.equal((await fetch(`${values.controller}/healthz`)).status, 200)
})

test("every documented command runs against the demo", { timeout: 900_000 }, async () => {
  await mkdir(join(dir, "tmp"), { recursive: true })
  const failures: string[] = []
  for (const block of blocks.filter((b) => b.kind === "commands")) {
    const lines = runnable(block)
    if (lines.length === 0) continue
    const r = await runBlock(block, lines, (await nodePython()).path)
    if (r.code !== 0) failures.push(`exit ${r.code}: ${r.output}`)
  }
  assert.deepEqual(failures, [])
  assert.equal(demo?.exitCode, null, `the demo is still up:\n${demoOut}`)
})

// Each command's --help, asked of one child: about fifteen commands, each of which would
// otherwise start a process of its own (the commands above run as processes already).
const helpTexts = sacarInOne()
after(() => helpTexts.close())

test("the command lists name real commands, and each option is in that command's --help", async () => {
  const synopses = blocks.filter((b) => b.kind === "synopsis").flatMap((b) => b.lines)
  assert.ok(synopses.length > 5)
  const help = new Map<string, string>()
  for (const line of synopses) {
    for (const part of line.split(/\s{3,}/)) {
      const m = /^sacar ([a-z][a-z-]*)/.exec(part.trim())
      if (m === null) continue
      const name = m[1]!
      if (!help.has(name)) {
        const r = await helpTexts.run([name, "--help"])
        assert.equal(r.code, 0, `sacar ${name} --help: ${r.stderr}`)
        help.set(name, r.stdout)
      }
      for (const flag of part.match(/--[a-z][a-z0-9-]*/g) ?? []) {
        assert.ok(help.get(name)!.includes(flag), `sacar ${name}: ${flag} is documented but not in --help`)
      }
    }
  }
  for (const name of ["logs", "deploy"]) assert.ok(help.has(name), `the command list names sacar ${name}`)
  assert.ok(synopses.some((l) => l.includes("--wait")), "deploy --wait is in the command list")
})

test("Ctrl-C ends a --keep-running demo with the exit code docs/demo.md gives, leaving nothing running", async () => {
  const doc = await readFile(join(ROOT, "docs", "demo.md"), "utf8")
  assert.match(
    doc,
    /`0` the release is live on all three nodes \(or Ctrl-C after the\s+walk-through with `--keep-running`\)/
  )
  demo!.kill("SIGINT")
  assert.equal(await demoExit, 0, demoOut)
  await assertNothingLeft(join(dir, ".demo"))
})
