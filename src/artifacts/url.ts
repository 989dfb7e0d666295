/** The artifact URL schemes Sacar fetches, parsed once so each source sees only its own shape. */
import { fileURLToPath } from "node:url"
import { DownloadError } from "./errors.ts"

export type ArtifactLocation =
  | { readonly _tag: "Gcs"; readonly bucket: string; readonly object: string }
  | { readonly _tag: "Http"; readonly url: URL }
  | { readonly _tag: "File"; readonly path: string }

const bad = (url: string, why: string) =>
  new DownloadError({ url, retryable: false, message: `${url}: ${why}; use gs://bucket/object, https:// or file://` })

export const parseArtifactUrl = (url: string): ArtifactLocation | DownloadError => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return bad(url, "not a URL")
  }
  switch (parsed.protocol) {
    case "gs:": {
      // Taken from the raw text: URL parsing would normalise `..` and percent-escapes in the object name.
      const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(url)
      if (!match) return bad(url, "a gs:// URL needs a bucket and an object name")
      return { _tag: "Gcs", bucket: match[1]!, object: match[2]! }
    }
    case "https:":
    case "http:":
      return { _tag: "Http", url: parsed }
    case "file:":
      try {
        return { _tag: "File", path: fileURLToPath(parsed) }
      } catch (error) {
        return bad(url, (error as Error).message)
      }
    default:
      return bad(url, `unsupported scheme ${parsed.protocol}`)
  }
}
