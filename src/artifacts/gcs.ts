/**
 * gs:// downloads. The Google library supplies configuration and credentials only:
 * its own media download (teeny-request) throws an uncaught ERR_STREAM_UNABLE_TO_PIPE
 * on Node 24 when it retries or when its stream is destroyed early, which is what an
 * interruption does (docs/runtime.md). So the media URL is fetched here, with an
 * AbortSignal, and retries belong to the caller's Schedule.
 */
import { Storage } from "@google-cloud/storage"
import type { Readable } from "node:stream"
import { fetchBody } from "./http.ts"

export interface GcsClient {
  readonly mediaUrl: (bucket: string, object: string) => string
  readonly open: (bucket: string, object: string, signal: AbortSignal) => Promise<Readable>
}

export const makeGcsClient = (storage: Storage = new Storage({ retryOptions: { autoRetry: false } })): GcsClient => {
  // With STORAGE_EMULATOR_HOST the library uses that address as its base URL, as is.
  const base = (/^[a-z][a-z0-9+.-]*:\/\//i.test(storage.baseUrl) ? storage.baseUrl : `http://${storage.baseUrl}`)
    .replace(/\/+$/, "")
  const mediaUrl = (bucket: string, object: string) =>
    `${base}/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(object)}?alt=media`
  const authHeaders = async (url: string): Promise<Record<string, string>> => {
    if (storage.customEndpoint) return {} // emulators take no credentials, like the library itself
    const headers = await storage.authClient.getRequestHeaders(url)
    const plain: Record<string, string> = {}
    headers.forEach((value, name) => {
      plain[name] = value
    })
    return plain
  }
  return {
    mediaUrl,
    open: async (bucket, object, signal) => {
      const url = mediaUrl(bucket, object)
      return fetchBody(url, signal, await authHeaders(url))
    }
  }
}
