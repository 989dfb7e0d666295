import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { decodeDocument } from "../../src/spec/decode.ts"
import { AppConfig, DeploySpec, LockDoc, NodeStatus, PinDoc, ReleaseSpec } from "../../src/spec/documents.ts"
import { StatusReport } from "../../src/spec/status-report.ts"
import { randomPrefix, startConsul, type TestConsul } from "../support/consul.ts"
import { Kv } from "../support/kv.ts"
import { sacarInOne } from "../support/sacar-in-one.ts"
import { runSacar } from "../support/sacar.ts"

const SHA_A = "a".repeat(40)
const SHA_B = "b".repeat(40)

let consul: TestConsul
before(async () => {
  consul = await startConsul()
})
after(() => consul.close())

const kvGet = (key: string) => new Kv(consul.addr).text(key)
const kvPut = async (key: string, value: string) => assert.equal(await new Kv(consul.addr).put(key, value), true)
const kvKeys = (prefix: string) => new Kv(consul.addr).keys(`${prefix}/`)
const decoded = <S extends Parameters<typeof decodeDocument>[0]>(schema: S, raw: string | undefined): S["Type"] => {
  const r = decodeDocument(schema, "doc", "k", raw)
  assert.ok(Result.isSuccess(r), Result.isFailure(r) ? r.failure.message : "")
  return r.success
}

// These tests are about what each command prints, returns and writes: about fifty
// commands, run in one child rather than fifty (half a CPU-second each to start).
// Starting as a process is the business of the last test here and of the docs test.
const inOne = sacarInOne()
after(() => inOne.close())

/** A fresh prefix and a `sacar` bound to it. */
const world = () => {
  const prefix = randomPrefix()
  const env = { CONSUL_HTTP_ADDR: consul.addr, SACAR_PREFIX: prefix, SACAR_USER: "alice" }
  return { prefix, sacar: (...args: string[]) => inOne.run(args, env) }
}

describe("operator commands against Consul", { concurrency: true }, () => {
  test("app set creates, then changes only the given fields", async () => {
    const { prefix, sacar } = world()
    const created = await sacar(
      "app",
      "set",
      "shop",
      "--artifact",
      "file:///srv/{app}/{sha}.tgz",
      "--nodes",
      "web-*,api-1",
      "--max-parallel",
      "2"
    )
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, /created/)
    const changed = await sacar("app", "set", "shop", "--auto-deploy", "--keep", "3")
    assert.equal(changed.code, 0, changed.stderr)
    const config = decoded(AppConfig, await kvGet(`${prefix}/shop/config`))
    assert.deepEqual(
      {
        artifact: config.artifact,
        nodes: config.nodes,
        maxParallel: config.maxParallel,
        autoDeploy: config.autoDeploy,
        keep: config.keepReleases
      },
      { artifact: "file:///srv/{app}/{sha}.tgz", nodes: ["web-*", "api-1"], maxParallel: 2, autoDeploy: true, keep: 3 }
    )
  })

  test("release writes a ReleaseSpec an operator could have written; deploy writes the DeploySpec", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    const rel = await sacar(
      "release",
      "shop",
      SHA_A,
      "--artifact",
      "https://example.com/a.tgz",
      "--sha256",
      "c".repeat(64)
    )
    assert.equal(rel.code, 0, rel.stderr)
    const spec = decoded(ReleaseSpec, await kvGet(`${prefix}/shop/releases/${SHA_A}`))
    assert.deepEqual(spec.artifact, { url: "https://example.com/a.tgz", sha256: "c".repeat(64) })
    assert.equal(spec.requestedBy, "alice")
    const dep = await sacar("deploy", "shop", SHA_B)
    assert.equal(dep.code, 0, dep.stderr)
    assert.match(dep.stdout, /prepare it first/)
    const deploy = decoded(DeploySpec, await kvGet(`${prefix}/shop/deploy`))
    assert.equal(deploy.sha, SHA_B)
    assert.equal(deploy.requestedBy, "alice")
    assert.equal(deploy.force, undefined)
  })

  test("a lock refuses deploys until --force, which is recorded; unlock lifts it", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    const lock = await sacar("lock", "shop", "-m", "black friday freeze", "--until", "2h")
    assert.equal(lock.code, 0, lock.stderr)
    const doc = decoded(LockDoc, await kvGet(`${prefix}/shop/lock`))
    assert.equal(doc.reason, "black friday freeze")
    assert.equal(doc.by, "alice")
    assert.ok(Date.parse(doc.until!) > Date.now() + 3_500_000)
    const refused = await sacar("deploy", "shop", SHA_A)
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /shop is locked by alice until \S+: black friday freeze; `sacar unlock shop` lifts it/)
    assert.equal(await kvGet(`${prefix}/shop/deploy`), undefined)
    const forced = await sacar("deploy", "shop", SHA_A, "--force", "-m", "hotfix")
    assert.equal(forced.code, 0, forced.stderr)
    const deploy = decoded(DeploySpec, await kvGet(`${prefix}/shop/deploy`))
    assert.deepEqual({ force: deploy.force, reason: deploy.reason }, { force: true, reason: "hotfix" })
    assert.equal((await sacar("unlock", "shop")).code, 0)
    assert.equal(await kvGet(`${prefix}/shop/lock`), undefined)
    const again = await sacar("unlock", "shop")
    assert.match(again.stdout, /was not locked/)
  })

  test("rollback deploys the release live before the current one and pins; unpin removes the pin", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    const none = await sacar("rollback", "shop")
    assert.equal(none.code, 1)
    assert.match(none.stderr, /never been deployed/)
    assert.equal((await sacar("deploy", "shop", SHA_B)).code, 0)
    // Two nodes report B live with A before it, as reconcilers do.
    for (const node of ["web-1", "web-2"]) {
      await kvPut(
        `${prefix}/shop/status/${node}`,
        JSON.stringify({
          node,
          updatedAt: new Date().toISOString(),
          releases: {},
          current: SHA_B,
          previous: SHA_A,
          deploy: null
        })
      )
    }
    const rb = await sacar("rollback", "shop")
    assert.equal(rb.code, 0, rb.stderr)
    assert.match(rb.stdout, /from bbbbbbb to aaaaaaa/)
    const deploy = decoded(DeploySpec, await kvGet(`${prefix}/shop/deploy`))
    assert.deepEqual({ sha: deploy.sha, reason: deploy.reason }, { sha: SHA_A, reason: "rollback" })
    const pin = decoded(PinDoc, await kvGet(`${prefix}/shop/pin`))
    assert.deepEqual({ sha: pin.sha, by: pin.by }, { sha: SHA_A, by: "alice" })
    assert.equal((await sacar("unpin", "shop")).code, 0)
    assert.equal(await kvGet(`${prefix}/shop/pin`), undefined)
  })

  test("status --json decodes with the project's schemas; the table shows releases by node", async () => {
    const { prefix, sacar } = world()
    assert.equal((await sacar("app", "set", "shop", "--artifact", "file:///srv/{sha}.tgz")).code, 0)
    assert.equal((await sacar("release", "shop", SHA_A)).code, 0)
    const status = {
      node: "web-1",
      updatedAt: new Date().toISOString(),
      current: null,
      deploy: null,
      releases: {
        [SHA_A]: {
          phase: "failed",
          message: "install failed: no matching distribution for flask",
          attempt: 1,
          steps: { download: { ms: 5 } }
        }
      }
    }
    await kvPut(`${prefix}/shop/status/web-1`, JSON.stringify(status))
    await kvPut(`${prefix}/shop/releases/${SHA_B}`, "{not json")
    const json = await sacar("status", "--json")
    assert.equal(json.code, 0, json.stderr)
    const report = Schema.decodeUnknownSync(StatusReport)(JSON.parse(json.stdout))
    assert.equal(report.apps.length, 1)
    const app = report.apps[0]!
    assert.equal(app.app, "shop")
    assert.deepEqual(app.releases.map((r) => r.sha), [SHA_A])
    assert.equal(Schema.decodeUnknownSync(NodeStatus)(app.nodes["web-1"]).releases[SHA_A]?.phase, "failed")
    assert.match(app.problems.join("\n"), new RegExp(`${prefix}/shop/releases/${SHA_B}: not valid JSON`))
    const table = await sacar("status", "shop")
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /RELEASE\s+AGE\s+web-1/)
    assert.match(table.stdout, /aaaaaaa\s+\S+\s+failed/)
    assert.match(table.stdout, /no matching distribution for flask/)
    const missing = await sacar("status", "nosuchapp")
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /app nosuchapp does not exist/)
  })

  test("status --watch redraws when something changes", async () => {
    const { prefix } = world()
    const env = { CONSUL_HTTP_ADDR: consul.addr, SACAR_PREFIX: prefix }
    await kvPut(`${prefix}/shop/config`, JSON.stringify({ artifact: "file:///x/{sha}.tgz" }))
    const { spawn } = await import("node:child_process")
    const { SACAR_BIN, childEnv } = await import("../support/sacar.ts")
    const child = spawn(process.execPath, [SACAR_BIN, "status", "shop", "--watch"], {
      env: childEnv(env),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d))
    try {
      const waitFor = async (re: RegExp) => {
        // A deadline, not a sleep: a child `sacar` can take many seconds to start on a loaded machine.
        for (let i = 0; i < 600 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100))
        assert.match(out, re)
      }
      await waitFor(/no releases/)
      await kvPut(`${prefix}/shop/releases/${SHA_A}`, "{}")
      await waitFor(/aaaaaaa/)
    } finally {
      child.kill("SIGINT")
    }
  })

  test("bad arguments exit 2 with a clear message, and write nothing", async () => {
    const { prefix, sacar } = world()
    const cases: Array<[string[], RegExp]> = [
      [["app", "set", "Shop!"], /"Shop!" is not an app name/],
      [["app", "set", "shop", "--keep", "many"], /--keep must be a whole number/],
      [["app", "frob", "shop"], /unknown subcommand "frob"/],
      [["release", "shop", "1234"], /"1234" is not a commit sha/],
      [["release", "shop", SHA_A, "--sha256", "zz", "--artifact", "gs://b/o"], /--sha256 must be 64/],
      [["deploy", "shop"], /missing <sha>/],
      [["deploy", "shop", SHA_A, "--frobnicate"], /Unknown option '--frobnicate'/],
      [["lock", "shop"], /needs a reason/],
      [["lock", "shop", "-m", "x", "--until", "tomorrow"], /--until must be an ISO 8601 time/],
      [["app", "set", "shop", "--prepare-timeout", "soon"], /--prepare-timeout must be a duration/],
      [["rollback"], /missing <app>/],
      [["unpin", "a", "b"], /unexpected argument "b"/],
      [["status", "a", "b"], /unexpected argument "b"/],
      [["notify", "--app", "shop", "--sha", SHA_A], /missing --controller/]
    ]
    await Promise.all(cases.map(async ([args, message]) => {
      const r = await sacar(...args)
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`)
      assert.match(r.stderr, message, args.join(" "))
    }))
    assert.deepEqual(await kvKeys(prefix), [])
  })

  test("commands on an app that does not exist say how to create it", async () => {
    const { sacar } = world()
    const r = await sacar("deploy", "ghost", SHA_A)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /app ghost does not exist: create it with `sacar app set ghost/)
  })

  test("--help on every command prints usage with an example and exits 0", async () => {
    const { sacar } = world()
    const commands = [
      "app",
      "status",
      "release",
      "deploy",
      "rollback",
      "lock",
      "unlock",
      "unpin",
      "notify",
      "pack",
      "dev-consul",
      "controller",
      "reconciler",
      "demo"
    ]
    await Promise.all(commands.map(async (c) => {
      const r = await sacar(c, "--help")
      assert.equal(r.code, 0, `${c}: ${r.stderr}`)
      assert.match(r.stdout, /usage: sacar/i, c)
    }))
    const top = await sacar("--help")
    assert.equal(top.code, 0)
    for (const c of commands) assert.match(top.stdout, new RegExp(`\\b${c}\\b`))
    const unknown = await sacar("frobnicate")
    assert.equal(unknown.code, 2)
  })
})

test("an unreachable Consul gives a clear message within a few seconds, exit 1", async () => {
  const started = Date.now()
  const r = await runSacar(["status"], { CONSUL_HTTP_ADDR: "127.0.0.1:1" })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /cannot reach Consul at http:\/\/127\.0\.0\.1:1/)
  assert.ok(Date.now() - started < 8_000, "refused within seconds")
  // A server that accepts connections and never answers: the request timeout must end it.
  const { createServer } = await import("node:net")
  const held: import("node:net").Socket[] = []
  const silent = createServer((socket) => held.push(socket))
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
  const port = (silent.address() as { port: number }).port
  try {
    const startedSilent = Date.now()
    const blackhole = await runSacar(["status"], { CONSUL_HTTP_ADDR: `127.0.0.1:${port}` })
    assert.equal(blackhole.code, 1)
    assert.match(blackhole.stderr, new RegExp(`cannot reach Consul at http://127\\.0\\.0\\.1:${port}`))
    assert.ok(Date.now() - startedSilent < 15_000, "a silent Consul is given up on after the 5 s request timeout")
  } finally {
    for (const socket of held) socket.destroy()
    silent.close()
  }
  // Something that answers HTTP but is not Consul (a proxy, a wrong port) must not read as an empty cluster.
  const { createServer: createHttpServer } = await import("node:http")
  const impostor = createHttpServer((_req, res) => res.writeHead(404).end())
  await new Promise<void>((resolve) => impostor.listen(0, "127.0.0.1", resolve))
  try {
    const wrong = await runSacar(["status"], {
      CONSUL_HTTP_ADDR: `127.0.0.1:${(impostor.address() as { port: number }).port}`
    })
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /without an X-Consul-Index header: this is not a Consul HTTP API/)
  } finally {
    impostor.close()
  }
  const malformed = await runSacar(["status"], { CONSUL_HTTP_ADDR: "ftp://x" })
  assert.equal(malformed.code, 2)
  assert.match(malformed.stderr, /CONSUL_HTTP_ADDR/)
})
