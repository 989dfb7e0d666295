/**
 * Name rules from the contract. Every key segment that names an app, a commit or a
 * node is checked against these before it is used to build a key or a path on disk,
 * so a hostile name can never climb out of `SACAR_ROOT` or out of the KV prefix.
 */
import * as Schema from "effect/Schema"

export const APP_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/
export const SHA_PATTERN = /^[0-9a-f]{40}$/
export const NODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export const AppName = Schema.String.check(
  Schema.isPattern(APP_PATTERN, {
    message: "an app name is 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit"
  })
)
export type AppName = typeof AppName.Type

export const Sha = Schema.String.check(
  Schema.isPattern(SHA_PATTERN, { message: "a commit sha is 40 lowercase hex characters" })
)
export type Sha = typeof Sha.Type

export const NodeName = Schema.String.check(
  Schema.isPattern(NODE_PATTERN, {
    message: "a node name is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
  })
)
export type NodeName = typeof NodeName.Type

export const isAppName = (s: string): boolean => APP_PATTERN.test(s)
export const isSha = (s: string): boolean => SHA_PATTERN.test(s)
export const isNodeName = (s: string): boolean => NODE_PATTERN.test(s)

/** The short form used in messages and the `{short}` artifact placeholder. */
export const shortSha = (sha: string): string => sha.slice(0, 7)
