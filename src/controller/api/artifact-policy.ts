/**
 * Which artifact URLs `POST /v1/apps/<app>/releases` accepts. Whatever a release names
 * is downloaded on every node of the app and its `bin/prepare` runs there, so the
 * notify token must not be able to point nodes anywhere: a URL is accepted when it
 * lies under the app's own template (same scheme, same bucket or host, under the
 * template's fixed path prefix) or under one of the AppConfig's `artifactSources`
 * prefixes. `file://` and plain `http://` are accepted only when the app's template
 * (or an `artifactSources` entry, the operator's explicit choice) uses that scheme. A URL other than the template's own expansion for the sha
 * must come with a `sha256`.
 */
import { expandArtifact } from "../../spec/artifact.ts"
import type { AppConfig } from "../../spec/documents.ts"

const parse = (url: string): URL | undefined => {
  try {
    return new URL(url)
  } catch {
    return undefined
  }
}

/** The fixed part of a template: everything before its first placeholder, cut at the last "/". */
const fixedPrefix = (template: string): string => {
  const head = template.split("{")[0] ?? ""
  return head.slice(0, head.lastIndexOf("/") + 1)
}

/** Whether `url` lies under `prefix` (same scheme and host, path below the prefix's). */
const under = (url: URL, prefix: string): boolean => {
  const p = parse(prefix)
  if (p === undefined) return false
  const path = p.pathname.endsWith("/") ? p.pathname : `${p.pathname}/`
  return url.protocol === p.protocol && url.host === p.host && url.pathname.startsWith(path)
}

/** undefined when the URL may be used; otherwise why not, for the 400 answer. */
export const artifactRefusal = (
  app: string,
  sha: string,
  config: AppConfig | undefined,
  url: string,
  sha256: string | undefined
): string | undefined => {
  const u = parse(url)
  if (u === undefined) return `artifact ${JSON.stringify(url)} is not a URL`
  if (/[\\]|\/\.\.?(\/|$)|%2e%2e/i.test(url)) return `artifact ${url} has a ".." or "\\" in its path`
  const template = config?.artifact
  const own = template === undefined ? undefined : expandArtifact(template, app, sha)
  if (url === own) return undefined
  const templateScheme = template === undefined ? undefined : parse(expandArtifact(template, app, sha))?.protocol
  const listedScheme = (config?.artifactSources ?? []).some((prefix) => parse(prefix)?.protocol === u.protocol)
  if ((u.protocol === "file:" || u.protocol === "http:") && templateScheme !== u.protocol && !listedScheme) {
    return `artifact ${url}: ${u.protocol}// is accepted only when ${app}'s own "artifact" template (or an "artifactSources" entry) uses it`
  }
  const sources = [...(template === undefined ? [] : [fixedPrefix(template)]), ...(config?.artifactSources ?? [])]
  if (!sources.some((prefix) => prefix !== "" && under(u, prefix))) {
    return `artifact ${url} is not under ${app}'s artifact template${
      sources.length === 0 ? " (it has none)" : ` or artifactSources (${sources.join(", ")})`
    }; add its prefix to "artifactSources" in the AppConfig to allow it`
  }
  if (sha256 === undefined)
    return `artifact ${url} is not the template's URL for this sha, so it needs "sha256" (64 hex characters)`
  return undefined
}
