/**
 * Where a release's tarball comes from: the ReleaseSpec's own artifact when it has
 * one, otherwise the app's template with `{app}`, `{sha}` and `{short}` filled in.
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { AppConfig, ArtifactRef, ReleaseSpec } from "./documents.ts"
import { shortSha } from "./names.ts"

export const ARTIFACT_SCHEMES = ["gs:", "https:", "http:", "file:"] as const

export class ArtifactUrlError extends Data.TaggedError("ArtifactUrlError")<{ readonly message: string }> {}

export const expandArtifact = (template: string, app: string, sha: string): string =>
  template.replaceAll("{app}", app).replaceAll("{sha}", sha).replaceAll("{short}", shortSha(sha))

export const checkArtifactUrl = (url: string): Result.Result<string, ArtifactUrlError> => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Result.fail(
      new ArtifactUrlError({ message: `artifact ${JSON.stringify(url)} is not a URL; use gs://, https:// or file://` })
    )
  }
  if (!(ARTIFACT_SCHEMES as ReadonlyArray<string>).includes(parsed.protocol)) {
    return Result.fail(
      new ArtifactUrlError({ message: `artifact ${url} has scheme ${parsed.protocol}; use gs://, https:// or file://` })
    )
  }
  if (/\{[a-z]+\}/.test(url)) {
    return Result.fail(
      new ArtifactUrlError({ message: `artifact ${url} has an unknown placeholder; use {app}, {sha} or {short}` })
    )
  }
  return Result.succeed(url)
}

/** The artifact to download for `sha`, or why there is none. */
export const resolveArtifact = (
  app: string,
  sha: string,
  spec: ReleaseSpec,
  config: AppConfig | undefined
): Result.Result<ArtifactRef, ArtifactUrlError> => {
  const own = spec.artifact
  const ref: ArtifactRef | undefined = typeof own === "string"
    ? { url: own }
    : own !== undefined
    ? own
    : config?.artifact !== undefined
    ? { url: config.artifact }
    : undefined
  if (ref === undefined) {
    return Result.fail(
      new ArtifactUrlError({
        message: `no artifact for ${app} ${
          shortSha(sha)
        }: the ReleaseSpec names none and the AppConfig has no "artifact" template`
      })
    )
  }
  const url = expandArtifact(ref.url, app, sha)
  return Result.map(
    checkArtifactUrl(url),
    (checked) => (ref.sha256 === undefined ? { url: checked } : { url: checked, sha256: ref.sha256 })
  )
}
