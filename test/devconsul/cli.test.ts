// `sacar dev-consul` as a process: prints its URL, serves, exits 0 on SIGTERM;
// bad flags exit 2. Runs the CLI entry directly, since bin/sacar.ts belongs to the lead.

import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { once } from "node:events"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { eventually } from "../support/eventually.ts"

const CLI = fileURLToPath(new URL("../../src/devconsul/cli.ts", import.meta.url))
const RUN = `import(${
  JSON.stringify(CLI)
}).then((m) => m.main(process.argv.slice(1))).then((code) => process.exit(code))`

function runCli(args: string[]) {
  const child = spawn(process.execPath, ["--input-type=module", "-e", RUN, "--", ...args], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  const exit = once(child, "exit").then(([code]) => code as number | null)
  return { child, exit, out: () => stdout, err: () => stderr }
}

/** The URL the process prints once it listens. */
const listening = (run: ReturnType<typeof runCli>) =>
  eventually(
    "dev-consul to print its URL",
    () => /dev-consul listening on (http:\/\/\S+)/.exec(run.out())?.[1],
    15_000,
    () => `stderr: ${run.err()}`
  )

test("dev-consul listens, serves KV and stops on SIGTERM", async (t) => {
  const run = runCli(["--listen", "127.0.0.1:0"])
  t.after(() => run.child.kill("SIGKILL"))
  const url = await listening(run)

  const put = await fetch(`${url}/v1/kv/cli-test`, { method: "PUT", body: "v" })
  assert.equal(await put.json(), true)
  const leader = await fetch(`${url}/v1/status/leader`)
  assert.equal(await leader.json(), "127.0.0.1:8300")

  run.child.kill("SIGTERM")
  assert.equal(await run.exit, 0)
})

test("dev-consul rejects unknown flags and bad addresses with exit 2", async () => {
  const bad = runCli(["--nope"])
  assert.equal(await bad.exit, 2)
  assert.match(bad.err(), /Usage: sacar dev-consul/)
  const badAddr = runCli(["--listen", "localhost"])
  assert.equal(await badAddr.exit, 2)
  assert.match(badAddr.err(), /HOST:PORT/)
})

test("dev-consul --help prints usage and exits 0", async () => {
  const help = runCli(["--help"])
  assert.equal(await help.exit, 0)
  assert.match(help.out(), /--listen HOST:PORT/)
})

test("dev-consul --acl-default-policy deny --acl-initial-management-token T --acl-enable-key-list-policy enforces tokens", async (t) => {
  const run = runCli([
    "--listen",
    "127.0.0.1:0",
    "--acl-default-policy",
    "deny",
    "--acl-initial-management-token",
    "root",
    "--acl-enable-key-list-policy"
  ])
  t.after(() => run.child.kill("SIGKILL"))
  const url = await listening(run)
  assert.match(run.out(), /ACLs on, default policy deny/)
  assert.equal((await fetch(`${url}/v1/kv/k`, { method: "PUT", body: "v" })).status, 403)
  const policy = await fetch(`${url}/v1/acl/policy`, {
    method: "PUT",
    headers: { "X-Consul-Token": "root" },
    body: JSON.stringify({ Name: "kv-read", Rules: "key_prefix \"\" { policy = \"read\" }" })
  })
  assert.equal(policy.status, 200)
  const token = await fetch(`${url}/v1/acl/token`, {
    method: "PUT",
    headers: { "X-Consul-Token": "root" },
    body: JSON.stringify({ Policies: [{ Name: "kv-read" }] })
  })
  const { SecretID } = (await token.json()) as { SecretID: string }
  assert.equal((await fetch(`${url}/v1/kv/k`, { headers: { "X-Consul-Token": SecretID } })).status, 404)
  assert.equal((await fetch(`${url}/v1/kv/?recurse`, { headers: { "X-Consul-Token": SecretID } })).status, 403)
  run.child.kill("SIGTERM")
  assert.equal(await run.exit, 0)
})

test("dev-consul refuses ACL flags it cannot honour with exit 2", async () => {
  const noToken = runCli(["--acl-default-policy", "deny"])
  assert.equal(await noToken.exit, 2)
  assert.match(noToken.err(), /--acl-initial-management-token is required/)
  const badPolicy = runCli(["--acl-default-policy", "maybe", "--acl-initial-management-token", "x"])
  assert.equal(await badPolicy.exit, 2)
  assert.match(badPolicy.err(), /allow or deny/)
})
