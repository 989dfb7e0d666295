/**
 * How to reach Consul, read from the same CONSUL_* variables the Consul CLI uses, so
 * an operator's shell that works for `consul kv get` works for Sacar unchanged.
 * Files named by variables (token, CA, client certificate) are read here, at start-up,
 * so a wrong path stops the process with one line instead of failing every request.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parseDuration } from "../spec/duration.ts"

export interface ConsulTls {
  /** PEM contents of CONSUL_CACERT (or every file in CONSUL_CAPATH); undefined means the system roots. */
  readonly ca?: string
  /** CONSUL_TLS_SERVER_NAME: the name to expect on the server's certificate (SNI too). */
  readonly serverName?: string
  readonly cert?: string
  readonly key?: string
  /** false only when CONSUL_HTTP_SSL_VERIFY says so. */
  readonly verify: boolean
}

export interface ConsulConfig {
  /** Base URL without a trailing slash, e.g. "http://127.0.0.1:8500" or "https://consul:8501/prefix". */
  readonly address: string
  /** Sent as X-Consul-Token; Redacted so it cannot end up in a log line. */
  readonly token?: Redacted.Redacted<string>
  /** CONSUL_HTTP_AUTH, "user[:password]", sent as HTTP basic auth. */
  readonly httpAuth?: Redacted.Redacted<string>
  /** CONSUL_NAMESPACE and CONSUL_PARTITION (Consul Enterprise), sent as ?ns= and ?partition=. */
  readonly namespace?: string
  readonly partition?: string
  readonly tls: ConsulTls
  /**
   * SACAR_SESSION_TTL_MIN: every session TTL Sacar asks for is raised to this, for
   * clusters whose session_ttl_min is above Consul's default 10 s.
   */
  readonly sessionTtlMinMs?: number
  /**
   * The Consul node a session is created on when its caller names none (the reconciler:
   * SACAR_CONSUL_NODE, else SACAR_NODE). Undefined: the agent's own node.
   */
  readonly sessionNode?: string
  /** Bound on a non-blocking request (blocking reads get wait + wait/16 + this). Default 15 s. */
  readonly requestTimeoutMs?: number
}

/** A CONSUL_* variable is malformed; `message` is one line that names it. */
export class ConsulConfigError extends Data.TaggedError("ConsulConfigError")<{
  readonly variable: string
  readonly message: string
}> {}

export const DEFAULT_CONSUL_ADDRESS = "http://127.0.0.1:8500"

const fail = (variable: string, problem: string) =>
  new ConsulConfigError({ variable, message: `${variable}: ${problem}` })

/** Unset and empty mean the same thing, as in the Consul CLI. */
const read = (env: Readonly<Record<string, string | undefined>>, name: string): string | undefined => {
  const value = env[name]
  return value === undefined || value === "" ? undefined : value
}

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

const readFile = (variable: string, path: string): string => {
  try {
    return readFileSync(path, "utf8")
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    throw fail(variable, `cannot read ${JSON.stringify(path)}${code ? ` (${code})` : ""}`)
  }
}

/** Go's strconv.ParseBool, which is what the Consul CLI accepts. */
const parseBool = (variable: string, text: string): boolean => {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(text)) return true
  if (["0", "f", "F", "false", "FALSE", "False"].includes(text)) return false
  throw fail(variable, `expected true or false, got ${JSON.stringify(text)}`)
}

const parseAddress = (text: string): string => {
  const variable = "CONSUL_HTTP_ADDR"
  const trimmed = text.trim()
  if (/^unix:/i.test(trimmed))
    throw fail(variable, "unix sockets are not supported; use host:port or an http(s):// URL")
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)
  if (hasScheme && !/^https?:\/\//i.test(trimmed)) {
    throw fail(variable, `unsupported scheme in ${JSON.stringify(text)}; use http:// or https://`)
  }
  let url: URL
  try {
    url = new URL(hasScheme ? trimmed : `http://${trimmed}`)
  } catch {
    throw fail(variable, `not host:port or an http(s):// URL: ${JSON.stringify(text)}`)
  }
  if (url.hostname === "") throw fail(variable, `no host in ${JSON.stringify(text)}`)
  if (url.username !== "" || url.password !== "") {
    throw fail(variable, "credentials in the address are not supported; use CONSUL_HTTP_TOKEN")
  }
  if (url.search !== "" || url.hash !== "")
    throw fail(variable, `unexpected query or fragment in ${JSON.stringify(text)}`)
  const path = url.pathname.replace(/\/+$/, "")
  return `${url.protocol}//${url.host}${path}`
}

/** An HTTP header cannot carry control characters; catch it here rather than on every request. */
const checkToken = (variable: string, token: string): string => {
  const trimmed = token.trim()
  if (trimmed === "") throw fail(variable, "is empty")
  if (/[^\x20-\x7e]/.test(trimmed)) throw fail(variable, "contains characters that cannot be sent in an HTTP header")
  return trimmed
}

const checkPem = (variable: string, text: string): string => {
  if (!text.includes("-----BEGIN ")) throw fail(variable, "the file is not PEM (no -----BEGIN line)")
  return text
}

/** Every PEM file in a directory, as the Go api's CAPath does (files that are not PEM are skipped). */
const readCaPath = (variable: string, dir: string): string => {
  let names: Array<string>
  try {
    names = readdirSync(dir).sort()
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    throw fail(variable, `cannot read the directory ${JSON.stringify(dir)}${code ? ` (${code})` : ""}`)
  }
  const pems = names.flatMap((name) => {
    try {
      const text = readFileSync(join(dir, name), "utf8")
      return text.includes("-----BEGIN CERTIFICATE-----") ? [text] : []
    } catch {
      return [] // a subdirectory or an unreadable file, as Go's rootcerts skips them
    }
  })
  if (pems.length === 0) throw fail(variable, `no PEM certificate in ${JSON.stringify(dir)}`)
  return pems.join("\n")
}

/** Consul's session_ttl_min range: 1s (its floor for the setting) to 24h. */
const parseSessionTtlMin = (text: string): number => {
  const variable = "SACAR_SESSION_TTL_MIN"
  const ms = parseDuration(text)
  if (ms === undefined) throw fail(variable, `expected a duration such as 30s, got ${JSON.stringify(text)}`)
  if (ms < 10_000 || ms > 24 * 3600_000) throw fail(variable, `must be between 10s and 24h, got ${text}`)
  return ms
}

/** An Enterprise name: what Consul accepts for a namespace or partition. */
const checkName = (variable: string, text: string): string => {
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}[a-zA-Z0-9])?$/.test(text)) {
    throw fail(variable, `not a valid name: ${JSON.stringify(text)}`)
  }
  return text
}

const build = (env: Readonly<Record<string, string | undefined>>): ConsulConfig => {
  const sslText = read(env, "CONSUL_HTTP_SSL")
  const ssl = sslText === undefined ? undefined : parseBool("CONSUL_HTTP_SSL", sslText)
  const given = parseAddress(read(env, "CONSUL_HTTP_ADDR") ?? DEFAULT_CONSUL_ADDRESS)
  // As the Go api: CONSUL_HTTP_SSL=true makes the scheme https whatever the address says.
  const address = ssl === true ? given.replace(/^http:/, "https:") : given
  const plain = address.startsWith("http:")

  const tokenFile = read(env, "CONSUL_HTTP_TOKEN_FILE")
  const tokenText = tokenFile !== undefined
    ? checkToken("CONSUL_HTTP_TOKEN_FILE", readFile("CONSUL_HTTP_TOKEN_FILE", tokenFile))
    : (() => {
      const direct = read(env, "CONSUL_HTTP_TOKEN")
      return direct === undefined ? undefined : checkToken("CONSUL_HTTP_TOKEN", direct)
    })()

  const caFile = read(env, "CONSUL_CACERT")
  const caDir = read(env, "CONSUL_CAPATH")
  const serverName = read(env, "CONSUL_TLS_SERVER_NAME")
  const certPath = read(env, "CONSUL_CLIENT_CERT")
  const keyPath = read(env, "CONSUL_CLIENT_KEY")
  if (certPath !== undefined && keyPath === undefined)
    throw fail("CONSUL_CLIENT_KEY", "must be set when CONSUL_CLIENT_CERT is set")
  if (keyPath !== undefined && certPath === undefined)
    throw fail("CONSUL_CLIENT_CERT", "must be set when CONSUL_CLIENT_KEY is set")
  const verifyText = read(env, "CONSUL_HTTP_SSL_VERIFY")
  if (plain) {
    // Settings that only mean something over TLS are a mistake next to a plain address,
    // not something to drop silently: the operator meant to speak TLS.
    const tlsOnly = [
      "CONSUL_CACERT",
      "CONSUL_CAPATH",
      "CONSUL_CLIENT_CERT",
      "CONSUL_CLIENT_KEY",
      "CONSUL_TLS_SERVER_NAME"
    ]
      .find((name) => read(env, name) !== undefined)
    if (tlsOnly !== undefined) {
      throw fail(
        tlsOnly,
        `is set but Consul is reached over plain HTTP (${address}); use an https:// address or CONSUL_HTTP_SSL=true`
      )
    }
  }
  const httpAuth = read(env, "CONSUL_HTTP_AUTH")
  if (httpAuth !== undefined && /[^\x20-\x7e]/.test(httpAuth))
    throw fail("CONSUL_HTTP_AUTH", "contains characters that cannot be sent in an HTTP header")
  const namespace = read(env, "CONSUL_NAMESPACE")
  const partition = read(env, "CONSUL_PARTITION")
  const ttlMinText = read(env, "SACAR_SESSION_TTL_MIN")

  const tls: ConsulTls = {
    ...(caFile !== undefined
      ? { ca: checkPem("CONSUL_CACERT", readFile("CONSUL_CACERT", caFile)) }
      : caDir !== undefined
      ? { ca: readCaPath("CONSUL_CAPATH", caDir) }
      : {}),
    ...(serverName !== undefined ? { serverName } : {}),
    ...(certPath !== undefined
      ? { cert: checkPem("CONSUL_CLIENT_CERT", readFile("CONSUL_CLIENT_CERT", certPath)) }
      : {}),
    ...(keyPath !== undefined ? { key: checkPem("CONSUL_CLIENT_KEY", readFile("CONSUL_CLIENT_KEY", keyPath)) } : {}),
    verify: verifyText === undefined ? true : parseBool("CONSUL_HTTP_SSL_VERIFY", verifyText)
  }
  return {
    address,
    ...(tokenText !== undefined ? { token: Redacted.make(tokenText, { label: "CONSUL_HTTP_TOKEN" }) } : {}),
    ...(httpAuth !== undefined ? { httpAuth: Redacted.make(httpAuth, { label: "CONSUL_HTTP_AUTH" }) } : {}),
    ...(namespace !== undefined ? { namespace: checkName("CONSUL_NAMESPACE", namespace) } : {}),
    ...(partition !== undefined ? { partition: checkName("CONSUL_PARTITION", partition) } : {}),
    ...(ttlMinText !== undefined ? { sessionTtlMinMs: parseSessionTtlMin(ttlMinText) } : {}),
    tls
  }
}

/** The configuration the CONSUL_* variables describe (`env` defaults to process.env). */
export const consulConfigFromEnv = (
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<ConsulConfig, ConsulConfigError> =>
  Effect.try({
    try: () => build(env),
    catch: (error) => error instanceof ConsulConfigError ? error : fail("CONSUL_*", oneLine(String(error)))
  })
