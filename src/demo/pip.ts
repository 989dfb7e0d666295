/**
 * The demo's three nodes share one machine, and each would unpack and byte-compile the
 * interpreter's bundled pip on its first release (src/python/pip.ts): three copies of
 * the same few CPU-seconds on the same cores, while the user watches. The first node's
 * copy is made once, before the reconcilers start, and the others get hard links to it
 * where their reconciler keeps its shared pip. Best effort: a node without it unpacks
 * its own, as any node does.
 */
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import { mkdir } from "node:fs/promises"
import { basename, join } from "node:path"
import { promisify } from "node:util"
import { findInterpreter } from "../python/interpreter.ts"
import { sharedPip } from "../python/pip.ts"
import { releasePaths } from "../reconciler/steps/layout.ts"

const exec = promisify(execFile)

export const seedSharedPip = async (env: NodeJS.ProcessEnv, roots: ReadonlyArray<string>): Promise<void> => {
  const [first, ...others] = roots.map((root) => releasePaths(root, "-", "-").pipCache)
  if (first === undefined) return
  const interpreter = await Effect.runPromise(
    findInterpreter({ fallback: env.SACAR_PYTHON ?? "python3" }, env.PATH ?? "")
  ).catch(() => undefined)
  if (interpreter === undefined) return
  const unpacked = await Effect.runPromise(Effect.result(sharedPip(interpreter, first)))
  if (unpacked._tag === "Failure") return
  for (const cache of others) {
    await mkdir(cache, { recursive: true })
    await exec("cp", ["-al", unpacked.success, join(cache, basename(unpacked.success))]).catch(() => undefined)
  }
}
