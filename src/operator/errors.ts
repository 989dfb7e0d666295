import * as Data from "effect/Data"

/** An operator command could not do what was asked; `message` says why and what to do. */
export class RequestRefused extends Data.TaggedError("RequestRefused")<{ readonly message: string }> {}

/**
 * What was asked cannot mean anything for this app (a usage error that only the app's
 * documents reveal, such as --sha256 for an app without an artifact template): exit 2.
 */
export class InvalidRequest extends Data.TaggedError("InvalidRequest")<{ readonly message: string }> {}
