// What can stop `make dist`, with what a person does about it.
import * as Data from "effect/Data"

export class DistError extends Data.TaggedError("DistError")<{ readonly problem: string }> {
  override get message(): string {
    return `make dist: ${this.problem}`
  }
}
