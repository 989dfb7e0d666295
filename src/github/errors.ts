import * as Data from "effect/Data"

/**
 * A GitHub call that did not succeed.
 * `status` is GitHub's HTTP status; 0 means no response arrived (connection refused,
 * timeout). Requests our own checks refuse before sending carry 422, what GitHub would
 * have answered. `retryable` says whether trying the same call later can succeed.
 */
export class GitHubError extends Data.TaggedError("GitHubError")<{
  readonly operation: string
  readonly status: number
  readonly message: string
  readonly retryable: boolean
}> {}

/** Worth trying again later (`githubRetry`, common/retry.ts): no answer, 429, 5xx, a rate limit. */
export const isTransientGitHubError = (error: GitHubError): boolean => error.retryable

/** A GitHub setting in the environment is missing or malformed; `variable` names it. */
export class GitHubConfigError extends Data.TaggedError("GitHubConfigError")<{
  readonly variable: string
  readonly message: string
}> {}
