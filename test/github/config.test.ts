import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import assert from "node:assert/strict"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { githubConfigFromEnv, hasGitHubConfig } from "../../src/github/config.ts"
import { GitHubConfigError } from "../../src/github/errors.ts"
import { GitHub } from "../../src/github/github.ts"
import { fake, rsaKeys, SHA } from "./harness.ts"

const parse = (env: Record<string, string | undefined>) => Effect.runPromise(Effect.result(githubConfigFromEnv(env)))

const failsOn = async (env: Record<string, string>, variable: string, message: RegExp) => {
  const r = await parse(env)
  assert.ok(r._tag === "Failure", `expected failure for ${JSON.stringify(Object.keys(env))}`)
  assert.ok(r.failure instanceof GitHubConfigError)
  assert.equal(r.failure.variable, variable)
  assert.match(r.failure.message, message)
  assert.ok(r.failure.message.startsWith(variable + ":"))
}

test("config: token mode, default API URL", async () => {
  const r = await parse({ GITHUB_TOKEN: "ghp_abc" })
  assert.ok(r._tag === "Success")
  assert.equal(r.success.apiUrl, "https://api.github.com")
  assert.ok(r.success.auth.mode === "token")
  assert.equal(Redacted.value(r.success.auth.token), "ghp_abc")
  assert.doesNotMatch(String(r.success.auth.token), /ghp_abc/)
})

test("config: App mode with PKCS#1, PKCS#8, one-line and file keys; App wins over GITHUB_TOKEN", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sacar-gh-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const format of ["pkcs1", "pkcs8"] as const) {
    const { privateKey } = rsaKeys(format)
    const file = join(dir, `${format}.pem`)
    writeFileSync(file, privateKey)
    for (
      const env of [
        {
          GITHUB_APP_ID: "123",
          GITHUB_APP_PRIVATE_KEY: privateKey,
          GITHUB_TOKEN: "ghp_ignored",
          GITHUB_API_URL: "https://ghe.example/api/v3/"
        },
        { GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY: privateKey.replace(/\n/g, "\\n") },
        { GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY_FILE: file }
      ]
    ) {
      const r = await parse(env)
      assert.ok(r._tag === "Success", JSON.stringify(r))
      assert.ok(r.success.auth.mode === "app")
      assert.equal(r.success.auth.appId, "123")
      assert.match(Redacted.value(r.success.auth.privateKey), /^-----BEGIN PRIVATE KEY-----/)
    }
  }
  const r = await parse({
    GITHUB_APP_ID: "1",
    GITHUB_APP_PRIVATE_KEY: rsaKeys("pkcs1").privateKey,
    GITHUB_API_URL: "https://ghe.example/api/v3/"
  })
  assert.ok(r._tag === "Success")
  assert.equal(r.success.apiUrl, "https://ghe.example/api/v3")
})

test("config: every problem names its variable", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sacar-gh-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const { privateKey } = rsaKeys("pkcs1")
  await failsOn({}, "GITHUB_APP_ID", /or GITHUB_TOKEN/)
  await failsOn({ GITHUB_APP_ID: "123" }, "GITHUB_APP_PRIVATE_KEY", /required/)
  await failsOn({ GITHUB_APP_ID: "abc", GITHUB_APP_PRIVATE_KEY: privateKey }, "GITHUB_APP_ID", /numeric App ID/)
  await failsOn({ GITHUB_APP_PRIVATE_KEY: privateKey }, "GITHUB_APP_ID", /required when/)
  await failsOn({ GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: "hunter2" }, "GITHUB_APP_PRIVATE_KEY", /not a PEM/)
  await failsOn(
    {
      GITHUB_APP_ID: "1",
      GITHUB_APP_PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"
    },
    "GITHUB_APP_PRIVATE_KEY",
    /cannot be read/
  )
  await failsOn(
    { GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: privateKey, GITHUB_APP_PRIVATE_KEY_FILE: "/x" },
    "GITHUB_APP_PRIVATE_KEY",
    /not both/
  )
  await failsOn(
    { GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY_FILE: join(dir, "missing.pem") },
    "GITHUB_APP_PRIVATE_KEY_FILE",
    /ENOENT/
  )
  const ec = join(dir, "ec.pem")
  const { generateKeyPairSync } = await import("node:crypto")
  writeFileSync(
    ec,
    generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" })
  )
  await failsOn({ GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY_FILE: ec }, "GITHUB_APP_PRIVATE_KEY_FILE", /ec key/)
  await failsOn({ GITHUB_TOKEN: "t", GITHUB_API_URL: "not a url" }, "GITHUB_API_URL", /not a URL/)
  await failsOn({ GITHUB_TOKEN: "t", GITHUB_API_URL: "ftp://x" }, "GITHUB_API_URL", /http/)
  // The key itself never shows up in an error.
  const r = await parse({ GITHUB_APP_ID: "x!", GITHUB_APP_PRIVATE_KEY: privateKey })
  assert.ok(r._tag === "Failure")
  assert.doesNotMatch(r.failure.message, /PRIVATE KEY/)
  assert.equal(hasGitHubConfig({}), false)
  assert.equal(hasGitHubConfig({ GITHUB_TOKEN: "t" }), true)
})

test("config: GitHub.layer reads the process environment", async (t) => {
  // Each test file runs in its own process, so this file may change process.env.
  const saved = { ...process.env }
  t.after(() => {
    for (
      const k of [
        "GITHUB_API_URL",
        "GITHUB_TOKEN",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_PRIVATE_KEY_FILE"
      ]
    ) {
      if (saved[k] === undefined) delete process.env[k]
      else process.env[k] = saved[k]
    }
  })
  const gh = await fake(t, { token: "ghp_env" })
  for (const k of ["GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE"]) delete process.env[k]
  process.env["GITHUB_API_URL"] = gh.url
  process.env["GITHUB_TOKEN"] = "ghp_env"
  const mode = await Effect.runPromise(
    GitHub.use((github) =>
      github.createCommitStatus({
        owner: "acme",
        repo: "shop",
        sha: SHA,
        state: "success",
        context: "c",
        description: "d"
      }).pipe(Effect.as(github.mode))
    ).pipe(Effect.provide(GitHub.layer))
  )
  assert.equal(mode, "token")
  assert.equal(gh.commitStatuses().length, 1)
  delete process.env["GITHUB_TOKEN"]
  const exit = await Effect.runPromiseExit(
    GitHub.use((github) => Effect.succeed(github.mode)).pipe(Effect.provide(GitHub.layer))
  )
  assert.ok(Exit.isFailure(exit))
  assert.match(String((exit.cause.reasons[0] as { error: GitHubConfigError }).error.variable), /GITHUB_APP_ID/)
})
