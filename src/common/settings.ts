/**
 * Reading the environment. A missing or malformed setting stops the process at
 * start-up with one line naming the variable and exit code 2 (docs/contract.md §2);
 * `SettingError` carries exactly that line. Secrets are read here and nowhere else,
 * so nothing downstream is tempted to log the environment.
 */
import * as Data from "effect/Data"
import { readFileSync } from "node:fs"
import { parseDuration } from "../spec/duration.ts"

export class SettingError extends Data.TaggedError("SettingError")<{
  readonly variable: string
  readonly message: string
}> {}

export type Env = Readonly<Record<string, string | undefined>>

const present = (value: string | undefined): value is string => value !== undefined && value.trim() !== ""

export const optionalSetting = (env: Env, name: string): string | undefined => {
  const value = env[name]
  return present(value) ? value.trim() : undefined
}

/** A secret given either inline (`NAME`) or as a file (`NAME_FILE`, which wins). */
export const secretSetting = (env: Env, name: string): string | undefined => {
  const file = optionalSetting(env, `${name}_FILE`)
  if (file !== undefined) {
    try {
      const text = readFileSync(file, "utf8").trim()
      if (text === "")
        throw new SettingError({ variable: `${name}_FILE`, message: `${name}_FILE points at ${file}, which is empty` })
      return text
    } catch (cause) {
      if (cause instanceof SettingError) throw cause
      throw new SettingError({
        variable: `${name}_FILE`,
        message: `${name}_FILE points at ${file}, which cannot be read: ${(cause as Error).message}`
      })
    }
  }
  return optionalSetting(env, name)
}

export const intSetting = (env: Env, name: string, fallback: number, min = 1): number => {
  const raw = optionalSetting(env, name)
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) {
    throw new SettingError({
      variable: name,
      message: `${name} must be a whole number of at least ${min}, got ${JSON.stringify(raw)}`
    })
  }
  return value
}

/**
 * A Go-style duration ("72h", "30m", "1h30m": the form of every duration in the
 * contract), in milliseconds; at least `minMs`, so a typo such as "0s" cannot turn a
 * time-to-live into "delete at once".
 */
export const durationSetting = (env: Env, name: string, fallbackMs: number, minMs = 1000): number => {
  const raw = optionalSetting(env, name)
  if (raw === undefined) return fallbackMs
  const ms = parseDuration(raw)
  if (ms === undefined || ms < minMs) {
    throw new SettingError({
      variable: name,
      message: `${name} must be a duration of at least ${minMs / 1000}s such as "72h" or "30m", got ${
        JSON.stringify(raw)
      }`
    })
  }
  return ms
}

export const choiceSetting = <const C extends string>(
  env: Env,
  name: string,
  choices: ReadonlyArray<C>,
  fallback: C
): C => {
  const raw = optionalSetting(env, name)
  if (raw === undefined) return fallback
  if (!(choices as ReadonlyArray<string>).includes(raw)) {
    throw new SettingError({
      variable: name,
      message: `${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(raw)}`
    })
  }
  return raw as C
}

/** `host:port` for listening; port 0 picks a free one. */
export const listenSetting = (env: Env, name: string, fallback: string): { host: string; port: number } => {
  const raw = optionalSetting(env, name) ?? fallback
  const match = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(raw)
  const port = match ? Number(match[2]) : NaN
  if (!match || port > 65535) {
    throw new SettingError({
      variable: name,
      message: `${name} must be host:port such as 127.0.0.1:8080, got ${JSON.stringify(raw)}`
    })
  }
  return { host: match[1] === "" ? "0.0.0.0" : match[1]!.replace(/^\[|\]$/g, ""), port }
}

const PREFIX_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/

/**
 * SACAR_PREFIX, the KV prefix every component and the CLI share: one check for all, so
 * a prefix one of them would refuse is never used by another.
 */
export const prefixSetting = (env: Env): string => {
  const prefix = (optionalSetting(env, "SACAR_PREFIX") ?? "sacar").replace(/\/+$/, "")
  if (!PREFIX_PATTERN.test(prefix) || /(^|\/)\.\.?(\/|$)/.test(prefix)) {
    throw new SettingError({
      variable: "SACAR_PREFIX",
      message:
        `SACAR_PREFIX must be a KV path such as "sacar" or "team/sacar" (A-Z, a-z, 0-9, '_', '.', '-' segments joined by '/'), got ${
          JSON.stringify(env.SACAR_PREFIX)
        }`
    })
  }
  return prefix
}
