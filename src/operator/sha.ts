/**
 * Shas as people type them: output shows 7 characters, so every command takes any
 * unique prefix of at least 7 among the app's releases, its deploy target and what its
 * nodes record (as git, gh and nomad do). A full sha is taken as it is: deploying a
 * commit that has no release yet is allowed.
 */
import * as Result from "effect/Result"
import { isSha } from "../spec/names.ts"
import type { AppState } from "../state/snapshot.ts"

export const MIN_PREFIX = 7

/** Every sha the app knows of, releases first. */
export const knownShas = (s: AppState): ReadonlyArray<string> => {
  const all = new Set<string>(s.releases.map((r) => r.sha))
  if (s.deploy !== undefined) all.add(s.deploy.spec.sha)
  for (const status of Object.values(s.statuses)) {
    for (const sha of Object.keys(status.releases)) if (isSha(sha)) all.add(sha)
    if (status.current) all.add(status.current)
    if (status.previous) all.add(status.previous)
  }
  return [...all]
}

/** The full sha `text` names in the app, or a sentence saying why it names none. */
export const resolveSha = (s: AppState, text: string): Result.Result<string, string> => {
  const prefix = text.toLowerCase()
  if (isSha(prefix)) return Result.succeed(prefix)
  if (!/^[0-9a-f]+$/.test(prefix) || prefix.length < MIN_PREFIX || prefix.length > 40)
    return Result.fail(`${JSON.stringify(text)} is not a commit sha (at least ${MIN_PREFIX} hex characters)`)
  const matches = knownShas(s).filter((sha) => sha.startsWith(prefix)).sort()
  if (matches.length === 1) return Result.succeed(matches[0]!)
  if (matches.length === 0) {
    return Result.fail(
      `no release or deploy of ${s.app} starts with ${prefix}; give the full 40-character sha for a new commit`
    )
  }
  return Result.fail(`${prefix} is ambiguous in ${s.app}: ${matches.join(", ")}; give more characters`)
}
