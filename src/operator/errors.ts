import { Data } from "effect"

/** An operator command could not do what was asked; `message` says why and what to do. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string }> {}
