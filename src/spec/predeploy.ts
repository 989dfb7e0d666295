/**
 * `sacar/<app>/locks/predeploy/<generation>`: the run-once pre-deploy of one deploy
 * generation. The key is a Consul lock (Go api flags) held by the session of the node
 * running `bin/pre-deploy`; its value is this document, so a person reading the key
 * in the Consul UI sees who ran the migration, how it went and the end of its output.
 *
 * `running` with no session on the key means the node running it died: the next node
 * to take the lock runs it again. `succeeded` lets every node go on to `bin/deploy`;
 * `failed` stops the whole rollout.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { NodeName, Sha } from "./names.ts"

export const PREDEPLOY_PHASES = ["running", "succeeded", "failed"] as const
export const PredeployPhase = Schema.Literals(PREDEPLOY_PHASES)
export type PredeployPhase = typeof PredeployPhase.Type

export const PredeployDoc = Schema.Struct({
  generation: Schema.Number,
  sha: Sha,
  phase: PredeployPhase,
  /** The node that ran (or is running) it. */
  node: NodeName,
  startedAt: Schema.String,
  finishedAt: Schema.optionalKey(Schema.String),
  /** "bin/pre-deploy succeeded in 3.2s", "no bin/pre-deploy in the release", or why it failed. */
  message: Schema.optionalKey(Schema.String),
  /** Last 4 KiB of its output. */
  log: Schema.optionalKey(Schema.String),
  /** How many nodes started it; above 1 only after a holder died mid-run. */
  attempt: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(1)))
})
export type PredeployDoc = typeof PredeployDoc.Type
