/**
 * Runs one prepareRelease in its own process, for crash tests: the input is JSON in
 * argv[2]; each step event is printed as a JSON line as it happens, then the outcome.
 * Exit code 0 when the release is ready, 1 when it failed. A test kills it with
 * SIGKILL at a chosen event and runs it again.
 */
import { enableCompileCache } from "node:module"
import type { PrepareReleaseInput } from "../../src/reconciler/steps/pipeline.ts"

// As bin/sacar.ts does, for the modules loaded after it: the crash tests start this often.
enableCompileCache()
const Effect = await import("effect/Effect")
const Exit = await import("effect/Exit")
const Layer = await import("effect/Layer")
const { ArtifactStore } = await import("../../src/artifacts/store.ts")
const { Python } = await import("../../src/python/python.ts")
const { prepareRelease } = await import("../../src/reconciler/steps/pipeline.ts")
const { loggingLayer } = await import("../../src/common/logging.ts")

const input = JSON.parse(process.argv[2] ?? "{}") as PrepareReleaseInput
const say = (line: unknown) => process.stdout.write(JSON.stringify(line) + "\n")

const exit = await Effect.runPromiseExit(
  prepareRelease(
    input,
    (step, event) =>
      Effect.sync(() =>
        say({ step, event: event._tag, ...(event._tag === "Finished" ? { skipped: event.skipped } : {}) })
      )
  ).pipe(
    // Logs to stderr, as a reconciler's: stdout is this protocol's.
    Effect.provide(Layer.mergeAll(ArtifactStore.layer, Python.layer, loggingLayer({ SACAR_LOG_FORMAT: "json" })))
  )
)
if (Exit.isSuccess(exit)) {
  say({ outcome: "ready", alreadyReady: exit.value.alreadyReady })
  process.exit(0)
} else {
  say({ outcome: "failed", cause: String(exit.cause) })
  process.exit(1)
}
