import * as Data from "effect/Data"

/**
 * A download that did not produce a verified file. `retryable` separates what may
 * heal by itself (5xx, 429, a reset connection, a stalled transfer) from what needs
 * a person (404, 403, 401, a checksum mismatch, a URL Sacar cannot fetch).
 */
export class DownloadError extends Data.TaggedError("DownloadError")<{
  readonly url: string
  readonly message: string
  readonly retryable: boolean
  readonly status?: number
}> {}

/** Worth trying again (`downloadRetry`, common/retry.ts): what may heal by itself. */
export const isTransientDownload = (error: DownloadError): boolean => error.retryable

export const isRetryableStatus = (status: number): boolean => status >= 500 || status === 429 || status === 408

export const httpStatusError = (url: string, status: number, statusText: string): DownloadError =>
  new DownloadError({
    url,
    status,
    retryable: isRetryableStatus(status),
    message: status === 404
      ? `${url}: not found (HTTP 404); check the artifact URL and that the build uploaded it`
      : status === 401 || status === 403
      ? `${url}: access denied (HTTP ${status}); check the node's credentials for the artifact store`
      : `${url}: HTTP ${status} ${statusText}`.trim()
  })

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ERR_STREAM_PREMATURE_CLOSE"
])

const errorCode = (cause: unknown): string | undefined => {
  for (let c: unknown = cause, depth = 0; c && depth < 5; depth++) {
    const code = (c as { code?: unknown }).code
    if (typeof code === "string") return code
    c = (c as { cause?: unknown }).cause
  }
  return undefined
}

/** A failure below HTTP (socket, DNS, stream); local disk problems are not retried. */
export const transportError = (url: string, cause: unknown): DownloadError => {
  const code = errorCode(cause)
  const text = cause instanceof Error ? cause.message : String(cause)
  const local = code === "ENOSPC" || code === "EACCES" || code === "EROFS" || code === "ENOENT"
  return new DownloadError({
    url,
    retryable: !local &&
      (code === undefined || RETRYABLE_CODES.has(code) || text === "fetch failed" || /terminated|socket/i.test(text)),
    message: `${url}: ${code ? `${code}: ` : ""}${text}`
  })
}
