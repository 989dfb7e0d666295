/**
 * ArtifactStore: stream a release tarball from gs://, https://, http:// or file:// into
 * a sink (a file, or the release's extraction), verified, with transient failures
 * retried on a capped, jittered exponential backoff. Each attempt gets a fresh sink;
 * interrupting a download aborts the transfer and discards the sink.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { downloadRetry } from "../common/retry.ts"
import { DownloadError, isTransientDownload } from "./errors.ts"
import { openFile } from "./file.ts"
import type { GcsClient } from "./gcs.ts"
import { fetchBody } from "./http.ts"
import type { Sink } from "./sink.ts"
import { transferVerified } from "./transfer.ts"
import type { OpenBody, Transferred } from "./transfer.ts"
import { parseArtifactUrl } from "./url.ts"

export interface DownloadOptions {
  /** Lowercase hex; a mismatch fails for good. */
  readonly sha256?: string | undefined
}

export interface RetryPolicy {
  /** Attempts after the first. */
  readonly retries: number
  readonly baseDelay: Duration.Input
  readonly maxDelay: Duration.Input
  /** A transfer that receives nothing for this long is abandoned (and retried). */
  readonly stallMs: number
}

export const defaultRetryPolicy: RetryPolicy = {
  retries: 6,
  baseDelay: "500 millis",
  maxDelay: "30 seconds",
  stallMs: 60_000
}

export class ArtifactStore extends Context.Service<ArtifactStore, {
  /**
   * Stream `url` into a sink made for each attempt (`fileSink(dest)` for a plain file),
   * committed only when the body is complete and matches `sha256`.
   */
  readonly fetch: <S extends Sink>(
    url: string,
    sink: () => Promise<S>,
    options?: DownloadOptions
  ) => Effect.Effect<Transferred<S>, DownloadError>
}>()("sacar/ArtifactStore") {
  /** Google credentials and STORAGE_EMULATOR_HOST come from the environment when the layer is built. */
  static readonly layer: Layer.Layer<ArtifactStore> = Layer.sync(ArtifactStore, () => makeArtifactStore())
}

export const makeArtifactStore = (options: {
  readonly gcs?: GcsClient
  readonly retry?: Partial<RetryPolicy>
} = {}): ArtifactStore["Service"] => {
  const policy = { ...defaultRetryPolicy, ...options.retry }
  // The Google client (and its ~35 MiB of modules) is loaded on the first gs:// URL:
  // a node whose apps use https:// or file:// never pays for it.
  let gcs: Promise<GcsClient> | undefined = options.gcs === undefined ? undefined : Promise.resolve(options.gcs)
  const schedule = downloadRetry(policy)

  const opener = (url: string): OpenBody | DownloadError => {
    const location = parseArtifactUrl(url)
    if (location instanceof DownloadError) return location
    switch (location._tag) {
      case "Gcs": {
        const client = gcs ??= import("./gcs.ts").then((m) => m.makeGcsClient())
        return async (signal) => (await client).open(location.bucket, location.object, signal)
      }
      case "Http":
        return (signal) => fetchBody(location.url.href, signal)
      case "File":
        return (signal) => openFile(location.path, signal)
    }
  }

  const fetchInto = <S extends Sink>(url: string, sink: () => Promise<S>, downloadOptions: DownloadOptions = {}) => {
    const open = opener(url)
    if (open instanceof DownloadError) return Effect.fail(open)
    return transferVerified({ url, sha256: downloadOptions.sha256, stallMs: policy.stallMs, open, sink }).pipe(
      Effect.tapError((error) =>
        isTransientDownload(error)
          ? Effect.logWarning("artifact download failed, will retry", { url, error: error.message })
          : Effect.void
      ),
      Effect.retry({ schedule, while: isTransientDownload }),
      Effect.withSpan("ArtifactStore.fetch", { attributes: { url } })
    )
  }
  return ArtifactStore.of({ fetch: fetchInto })
}
