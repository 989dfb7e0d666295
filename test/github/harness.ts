// Shared by the GitHub tests: keys, a fake GitHub, and a GitHub service pointed at it.
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { generateKeyPairSync } from "node:crypto"
import type { TestContext } from "node:test"
import type { GitHubConfig, GitHubTuning } from "../../src/github/config.ts"
import { GitHub } from "../../src/github/github.ts"
import type { GitHubShape } from "../../src/github/github.ts"
import { startFakeGitHub } from "../support/fake-github/index.ts"
import type { FakeGitHub, FakeGitHubOptions } from "../support/fake-github/index.ts"

export const APP_ID = "424242"
export const SHA = "d6fde92930d4715a2b49857d24b940956b26d2d3"

/** An RSA key pair; `pkcs1` is what GitHub lets you download, `pkcs8` the other common PEM. */
export const rsaKeys = (format: "pkcs1" | "pkcs8") => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: format, format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" }
  })
  return { privateKey, publicKey }
}

/** Fast enough for tests, same shape as production. */
export const fastTuning: Partial<GitHubTuning> = {
  writeIntervalMs: 0,
  retryBaseMs: 50,
  retries: 6,
  requestTimeoutMs: 5000
}

export const fake = async (t: TestContext, options: FakeGitHubOptions): Promise<FakeGitHub> => {
  const gh = await startFakeGitHub(options)
  t.after(() => gh.close())
  return gh
}

export const appConfig = (
  url: string,
  privateKey: string,
  tuning: Partial<GitHubTuning> = fastTuning
): GitHubConfig => ({
  apiUrl: url,
  auth: { mode: "app", appId: APP_ID, privateKey: Redacted.make(privateKey) },
  tuning
})

export const tokenConfig = (url: string, token: string, tuning: Partial<GitHubTuning> = fastTuning): GitHubConfig => ({
  apiUrl: url,
  auth: { mode: "token", token: Redacted.make(token) },
  tuning
})

/** Runs `f` with a GitHub service built from `config`. */
export const withGitHub = <A, E>(config: GitHubConfig, f: (gh: GitHubShape) => Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(GitHub.use(f).pipe(Effect.provide(GitHub.layerFrom(config))))

/** Like withGitHub, but returns the Exit so failures can be inspected. */
export const exitWithGitHub = <A, E>(config: GitHubConfig, f: (gh: GitHubShape) => Effect.Effect<A, E>) =>
  Effect.runPromiseExit(GitHub.use(f).pipe(Effect.provide(GitHub.layerFrom(config))))
