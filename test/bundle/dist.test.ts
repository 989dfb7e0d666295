// `make dist`'s builder, run twice: the same bytes both times, a tarball that unpacks
// into a folder whose `sacar` runs with the Node it carries (not this machine's), the
// production packages only, and the checksum file the Nomad jobs' artifact stanza uses.
import assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, it } from "node:test"
import { gunzipSync } from "node:zlib"
import { buildDist, type Dist } from "../../src/bundle/build.ts"
import { productionPackages } from "../../src/bundle/entries.ts"
import { randomPrefix, startConsul } from "../support/consul.ts"

const ROOT = join(import.meta.dirname, "..", "..")

describe("make dist", { timeout: 900_000 }, () => {
  let work: string
  let first: Dist
  let second: Dist
  let top: string

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "sacar-dist-test-"))
    first = await buildDist(ROOT, join(work, "a"))
    // The second build stores instead of compressing (a tenth of the CPU): the same
    // tar bytes are what make the same tarball, as the first test explains.
    second = await buildDist(ROOT, join(work, "b"), { gzipLevel: 0 })
    const unpacked = join(work, "unpacked")
    const tar = spawnSync("sh", ["-c", `mkdir -p "$1" && tar -xzf "$2" -C "$1"`, "sh", unpacked, first.path])
    assert.equal(tar.status, 0, String(tar.stderr))
    top = join(unpacked, `sacar-${first.version}-linux-x64`)
  }, { timeout: 900_000 })

  after(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it("gives the same bytes twice, named by version, with its sha256 next to it", async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string }
    assert.match(first.path, new RegExp(`/sacar-${version.replace(/\./g, "\\.")}-linux-x64\\.tar\\.gz$`))
    // Deflate at one level is a pure function of its input, so two builds give the same
    // tarball when they give the same tar bytes under the same gzip header: compared
    // here, the second build having stored its tar rather than compressed it.
    const [a, b] = await Promise.all([readFile(first.path), readFile(second.path)])
    assert.ok(gunzipSync(a).equals(gunzipSync(b)), "two builds, different bytes")
    // Magic, method, flags, mtime and OS; byte 8 (XFL) only tells the compression level.
    assert.deepEqual([...a.subarray(0, 8), a[9]], [...b.subarray(0, 8), b[9]])
    assert.equal(a.readUInt32LE(4), 0, "no build time in the gzip header")
    assert.equal(first.sha256, createHash("sha256").update(a).digest("hex"))
    assert.equal(await readFile(`${first.path}.sha256`, "utf8"), `${first.sha256}  sacar-${version}-linux-x64.tar.gz\n`)
  })

  it("runs `sacar --version` from the unpacked folder with the Node it ships", () => {
    // An environment without this machine's node on PATH: the entry script must not need it.
    const env = { PATH: "/usr/bin:/bin", HOME: tmpdir() }
    const version = spawnSync(join(top, "sacar"), ["--version"], { encoding: "utf8", env })
    assert.equal(version.status, 0, version.stderr)
    assert.equal(version.stdout, `${first.version}\n`)
    const runtime = spawnSync(join(top, "node_modules/.bin/node"), ["--version"], { encoding: "utf8", env })
    assert.match(runtime.stdout, /^v24\./)
    // A command that loads the dependencies (effect, the Consul client) answers too.
    const help = spawnSync(join(top, "sacar"), ["status", "--help"], { encoding: "utf8", env })
    assert.equal(help.status, 0, help.stderr)
    assert.match(help.stdout, /sacar status/)
  })

  it("runs the packed reconciler, whose node registration carries the version", async () => {
    const consul = await startConsul()
    const prefix = randomPrefix()
    const root = join(work, "node-root")
    const child = spawn(join(top, "sacar"), ["reconciler"], {
      env: {
        PATH: "/usr/bin:/bin",
        HOME: tmpdir(),
        CONSUL_HTTP_ADDR: consul.addr,
        SACAR_PREFIX: prefix,
        SACAR_NODE: "dist-1",
        SACAR_ROOT: root,
        // The installed product is plain JavaScript: it must run with Node's type stripping off.
        NODE_OPTIONS: "--no-experimental-strip-types"
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (d: Buffer) => (output += d.toString()))
    child.stderr.on("data", (d: Buffer) => (output += d.toString()))
    const exited = new Promise((r) => child.once("exit", r))
    try {
      const deadline = Date.now() + 60_000
      let registration: { version?: string } | undefined
      while (registration === undefined && Date.now() < deadline && child.exitCode === null) {
        const res = await fetch(`${consul.addr}/v1/kv/${prefix}/_nodes/dist-1?raw=true`)
        if (res.ok) registration = (await res.json()) as { version?: string }
        else await new Promise((r) => setTimeout(r, 200))
      }
      assert.ok(registration !== undefined, `no registration within 60 s:\n${output}`)
      assert.equal(registration.version, first.version)
    } finally {
      child.kill("SIGTERM")
      await exited
      await consul.close()
    }
  })

  it("ships Sacar's source as JavaScript, which runs with Node's type stripping turned off", () => {
    const shipped = spawnSync("find", [join(top, "bin"), join(top, "src"), "-type", "f"], { encoding: "utf8" })
    const files = shipped.stdout.split("\n").filter((f) => f !== "")
    assert.deepEqual(files.filter((f) => f.endsWith(".ts")), [], "no TypeScript file left to strip at run time")
    assert.ok(files.some((f) => f.endsWith("/src/reconciler/plan.js")))
    // Without the stripper a `.ts` module cannot load at all: every command must still answer.
    const env = { PATH: "/usr/bin:/bin", HOME: tmpdir(), NODE_OPTIONS: "--no-experimental-strip-types" }
    for (const args of [["--version"], ["status", "--help"], ["reconciler", "--help"]]) {
      const ran = spawnSync(join(top, "sacar"), args, { encoding: "utf8", env })
      assert.equal(ran.status, 0, `sacar ${args.join(" ")}: ${ran.stderr}`)
    }
  })

  it("carries the production packages and none of the development ones", async () => {
    const lock = JSON.parse(await readFile(join(ROOT, "package-lock.json"), "utf8"))
    const production = productionPackages(lock)
    assert.ok(production.includes("node_modules/effect") && production.includes("node_modules/node"))
    for (const pkg of production) assert.ok(existsSync(join(top, pkg, "package.json")), `${pkg} is in the tarball`)
    for (const dev of ["typescript", "playwright-core", "dprint", "@types/node", "consul"]) {
      assert.ok(!existsSync(join(top, "node_modules", dev)), `${dev} is a development dependency`)
    }
    assert.ok(!existsSync(join(top, "test")), "no tests")
    assert.ok(existsSync(join(top, "src/reconciler/plan.js")))
  })

  it("leaves out the packages' files Node never loads: type declarations, source maps, TypeScript", () => {
    const found = spawnSync("find", [join(top, "node_modules"), "-type", "f"], { encoding: "utf8" })
    const files = found.stdout.split("\n").filter((f) => f !== "")
    assert.deepEqual(files.filter((f) => /\.(?:[cm]?ts|map)$/.test(f)), [])
    // What they describe is there: effect's modules, and no folder left empty by the rule.
    assert.ok(files.some((f) => f.endsWith("/node_modules/effect/dist/Effect.js")))
    assert.ok(!existsSync(join(top, "node_modules/effect/src")), "effect's TypeScript sources")
  })
})
