// What can stop `sacar pack`, each carrying what a person needs to fix it.
import * as Data from "effect/Data"

/** The project directory is missing something the tarball layout needs. */
export class ProjectInvalid extends Data.TaggedError("ProjectInvalid")<{
  readonly dir: string
  readonly problem: string
}> {
  override get message(): string {
    return `${this.dir}: ${this.problem}`
  }
}

/** The interpreter asked for cannot be run. */
export class BuildPythonUnavailable extends Data.TaggedError("BuildPythonUnavailable")<{
  readonly command: string
  readonly detail: string
}> {
  override get message(): string {
    return `cannot run ${this.command}: ${this.detail}`
  }
}

/** `pip wheel` failed; `log` is the tail of its output. */
export class WheelBuildFailed extends Data.TaggedError("WheelBuildFailed")<{
  readonly command: string
  readonly exitCode: number | null
  readonly log: string
}> {
  override get message(): string {
    return `${this.command} exited with ${this.exitCode ?? "a signal"}:\n${this.log}`
  }
}

/** A flag or environment variable that cannot be used as given (exit code 2). */
export class BadSetting extends Data.TaggedError("BadSetting")<{
  readonly name: string
  readonly problem: string
}> {
  override get message(): string {
    return `${this.name}: ${this.problem}`
  }
}

export type PackError = ProjectInvalid | BuildPythonUnavailable | WheelBuildFailed | BadSetting
