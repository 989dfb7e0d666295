// CONSUL_* variables: what each accepts, and the one-line error naming it otherwise.

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import assert from "node:assert/strict"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { consulConfigFromEnv } from "../../src/consul/config.ts"
import type { ConsulConfig, ConsulConfigError } from "../../src/consul/config.ts"

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
const TLS = { CONSUL_HTTP_ADDR: "https://consul:8501" }

const ok = (env: Record<string, string>): ConsulConfig => {
  const exit = Effect.runSyncExit(consulConfigFromEnv(env))
  assert.ok(Exit.isSuccess(exit), `expected success for ${JSON.stringify(env)}`)
  return exit.value
}

const bad = (env: Record<string, string>): ConsulConfigError => {
  const exit = Effect.runSyncExit(consulConfigFromEnv(env))
  assert.ok(Exit.isFailure(exit), `expected a failure for ${JSON.stringify(env)}`)
  const reason = exit.cause.reasons[0]
  assert.ok(reason?._tag === "Fail")
  assert.equal(reason.error._tag, "ConsulConfigError")
  assert.ok(!reason.error.message.includes("\n"), "one line")
  return reason.error
}

test("defaults: local agent over http, no token, verified TLS", () => {
  const c = ok({})
  assert.equal(c.address, "http://127.0.0.1:8500")
  assert.equal(c.token, undefined)
  assert.equal(c.tls.verify, true)
  assert.equal(ok({ CONSUL_HTTP_ADDR: "" }).address, "http://127.0.0.1:8500")
})

test("CONSUL_HTTP_ADDR accepts host:port and http(s) URLs", () => {
  assert.equal(ok({ CONSUL_HTTP_ADDR: "consul.service:8500" }).address, "http://consul.service:8500")
  assert.equal(ok({ CONSUL_HTTP_ADDR: "http://10.0.0.1:8500/" }).address, "http://10.0.0.1:8500")
  assert.equal(ok({ CONSUL_HTTP_ADDR: "https://consul:8501" }).address, "https://consul:8501")
  assert.equal(ok({ CONSUL_HTTP_ADDR: "HTTPS://consul:8501/proxy/" }).address, "https://consul:8501/proxy")
  assert.equal(ok({ CONSUL_HTTP_ADDR: "[::1]:8500" }).address, "http://[::1]:8500")
})

test("a malformed CONSUL_HTTP_ADDR names the variable", () => {
  for (
    const value of [
      "ftp://consul:21",
      "unix:///var/run/consul.sock",
      "http://",
      "consul:notaport",
      "http://user:pw@consul:8500",
      "http://c:8500/?x=1"
    ]
  ) {
    const e = bad({ CONSUL_HTTP_ADDR: value })
    assert.equal(e.variable, "CONSUL_HTTP_ADDR")
    assert.match(e.message, /^CONSUL_HTTP_ADDR: /)
  }
})

test("tokens: CONSUL_HTTP_TOKEN_FILE wins; the token never shows in the config's text", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "consul-config-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, "token")
  writeFileSync(file, "from-file-token\n")
  const direct = ok({ CONSUL_HTTP_TOKEN: "direct-token" })
  assert.equal(Redacted.value(direct.token!), "direct-token")
  const both = ok({ CONSUL_HTTP_TOKEN: "direct-token", CONSUL_HTTP_TOKEN_FILE: file })
  assert.equal(Redacted.value(both.token!), "from-file-token")
  assert.ok(!JSON.stringify(both).includes("from-file-token"))
  assert.ok(!String(both.token).includes("from-file-token"))

  const missing = bad({ CONSUL_HTTP_TOKEN_FILE: join(dir, "nope") })
  assert.equal(missing.variable, "CONSUL_HTTP_TOKEN_FILE")
  assert.match(missing.message, /^CONSUL_HTTP_TOKEN_FILE: cannot read .*ENOENT/)
  writeFileSync(join(dir, "empty"), "\n")
  assert.match(bad({ CONSUL_HTTP_TOKEN_FILE: join(dir, "empty") }).message, /^CONSUL_HTTP_TOKEN_FILE: is empty/)
  const control = bad({ CONSUL_HTTP_TOKEN: "abc\u0001def" })
  assert.equal(control.variable, "CONSUL_HTTP_TOKEN")
  assert.ok(!control.message.includes("abc"))
})

test("TLS files are read at start-up; client cert and key come together", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "consul-tls-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const name of ["ca.pem", "cert.pem", "key.pem"]) writeFileSync(join(dir, name), PEM)
  writeFileSync(join(dir, "junk"), "not a pem")
  const c = ok({
    CONSUL_HTTP_ADDR: "https://consul:8501",
    CONSUL_CACERT: join(dir, "ca.pem"),
    CONSUL_CLIENT_CERT: join(dir, "cert.pem"),
    CONSUL_CLIENT_KEY: join(dir, "key.pem")
  })
  assert.equal(c.tls.ca, PEM)
  assert.equal(c.tls.cert, PEM)
  assert.equal(c.tls.key, PEM)

  assert.match(bad({ ...TLS, CONSUL_CACERT: join(dir, "missing.pem") }).message, /^CONSUL_CACERT: cannot read/)
  assert.match(bad({ ...TLS, CONSUL_CACERT: join(dir, "junk") }).message, /^CONSUL_CACERT: .*not PEM/)
  assert.match(
    bad({ ...TLS, CONSUL_CLIENT_CERT: join(dir, "cert.pem") }).message,
    /^CONSUL_CLIENT_KEY: must be set when CONSUL_CLIENT_CERT is set$/
  )
  assert.match(
    bad({ ...TLS, CONSUL_CLIENT_KEY: join(dir, "key.pem") }).message,
    /^CONSUL_CLIENT_CERT: must be set when CONSUL_CLIENT_KEY is set$/
  )
  assert.match(
    bad({ ...TLS, CONSUL_CLIENT_CERT: join(dir, "gone"), CONSUL_CLIENT_KEY: join(dir, "key.pem") }).message,
    /^CONSUL_CLIENT_CERT: cannot read/
  )
})

test("CONSUL_HTTP_SSL_VERIFY takes Go booleans", () => {
  assert.equal(ok({ CONSUL_HTTP_SSL_VERIFY: "false" }).tls.verify, false)
  assert.equal(ok({ CONSUL_HTTP_SSL_VERIFY: "0" }).tls.verify, false)
  assert.equal(ok({ CONSUL_HTTP_SSL_VERIFY: "true" }).tls.verify, true)
  const e = bad({ CONSUL_HTTP_SSL_VERIFY: "nope" })
  assert.equal(e.message, "CONSUL_HTTP_SSL_VERIFY: expected true or false, got \"nope\"")
})

test("CONSUL_HTTP_SSL=true speaks TLS to a host:port (the usual 127.0.0.1:8501 setup)", () => {
  assert.equal(ok({ CONSUL_HTTP_ADDR: "127.0.0.1:8501", CONSUL_HTTP_SSL: "true" }).address, "https://127.0.0.1:8501")
  assert.equal(ok({ CONSUL_HTTP_ADDR: "http://consul:8501", CONSUL_HTTP_SSL: "1" }).address, "https://consul:8501")
  assert.equal(ok({ CONSUL_HTTP_ADDR: "https://consul:8501", CONSUL_HTTP_SSL: "false" }).address, "https://consul:8501")
  assert.equal(bad({ CONSUL_HTTP_SSL: "yes" }).message, "CONSUL_HTTP_SSL: expected true or false, got \"yes\"")
})

test("TLS settings next to a plain http address are an error naming the variable, not dropped", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "consul-tls-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, "ca.pem"), PEM)
  for (
    const [name, value] of [
      ["CONSUL_CACERT", join(dir, "ca.pem")],
      ["CONSUL_CAPATH", dir],
      ["CONSUL_TLS_SERVER_NAME", "consul.internal"]
    ]
  ) {
    assert.match(
      bad({ CONSUL_HTTP_ADDR: "127.0.0.1:8500", [name!]: value! }).message,
      new RegExp(`^${name}: .*plain HTTP`)
    )
  }
})

test("CONSUL_CAPATH, CONSUL_TLS_SERVER_NAME, CONSUL_HTTP_AUTH, CONSUL_NAMESPACE/PARTITION are read as the Consul CLI does", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "consul-capath-"))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, "a.pem"), PEM)
  writeFileSync(join(dir, "README"), "not a certificate")
  const c = ok({
    ...TLS,
    CONSUL_CAPATH: dir,
    CONSUL_TLS_SERVER_NAME: "consul.internal",
    CONSUL_HTTP_AUTH: "ops:s3cret",
    CONSUL_NAMESPACE: "team-a",
    CONSUL_PARTITION: "default"
  })
  assert.equal(c.tls.ca, PEM)
  assert.equal(c.tls.serverName, "consul.internal")
  assert.equal(Redacted.value(c.httpAuth!), "ops:s3cret")
  assert.ok(!JSON.stringify(c).includes("s3cret"), "the password never shows in the config's text")
  assert.equal(c.namespace, "team-a")
  assert.equal(c.partition, "default")
  const empty = mkdtempSync(join(tmpdir(), "consul-capath-empty-"))
  t.after(() => rmSync(empty, { recursive: true, force: true }))
  assert.match(bad({ ...TLS, CONSUL_CAPATH: empty }).message, /^CONSUL_CAPATH: no PEM certificate/)
  assert.match(bad({ CONSUL_NAMESPACE: "bad name" }).message, /^CONSUL_NAMESPACE: not a valid name/)
})

test("SACAR_SESSION_TTL_MIN: a duration from 10s to 24h", () => {
  assert.equal(ok({ SACAR_SESSION_TTL_MIN: "30s" }).sessionTtlMinMs, 30_000)
  assert.equal(ok({}).sessionTtlMinMs, undefined)
  assert.match(bad({ SACAR_SESSION_TTL_MIN: "5s" }).message, /^SACAR_SESSION_TTL_MIN: must be between 10s and 24h/)
  assert.match(bad({ SACAR_SESSION_TTL_MIN: "soon" }).message, /^SACAR_SESSION_TTL_MIN: expected a duration/)
})
