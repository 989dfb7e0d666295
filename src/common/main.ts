/**
 * Running a long-lived component: SIGINT/SIGTERM interrupt the main fiber so every
 * scope closes (children killed, sessions destroyed, servers closed) before exit.
 * A second signal exits at once, for the operator whose shutdown is stuck.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"

/** Any configuration error (ours or the Consul layer's) names the variable it is about. */
const isSettingError = (e: unknown): e is { message: string; variable: string } =>
  typeof e === "object" && e !== null && "variable" in e && typeof e.variable === "string" && "message" in e

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

export const runComponent = async <E>(program: Effect.Effect<void, E>): Promise<number> => {
  const fiber = Effect.runFork(program)
  let signals = 0
  const onSignal = () => {
    signals += 1
    if (signals > 1) process.exit(130)
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  process.off("SIGINT", onSignal)
  process.off("SIGTERM", onSignal)
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return EXIT_OK
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some" && isSettingError(error.value)) {
    process.stderr.write(`sacar: ${error.value.message}\n`)
    return EXIT_USAGE
  }
  process.stderr.write(`sacar: ${error._tag === "Some" ? describeError(error.value) : Cause.pretty(exit.cause)}\n`)
  return EXIT_FAILURE
}

/** The sentence a tagged error carries, without a stack trace. */
export const describeError = (error: unknown): string => {
  if (
    error !== null && typeof error === "object" && "message" in error && typeof error.message === "string" &&
    error.message !== ""
  ) {
    return error.message
  }
  return String(error)
}
