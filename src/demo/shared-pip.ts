/**
 * One shared pip for the demo's three nodes. A node's first release unpacks its
 * interpreter's bundled pip into `<root>/.sacar/pip` and byte-compiles it, about three
 * CPU-seconds (src/python/pip.ts); three nodes on one machine would do it three times
 * over, at the same moment. So each node's `.sacar/pip` is a link to one folder, and
 * the demo fills it once, while the example is packed, before any node needs it: the
 * nodes then find pip there, as a node that has prepared before does.
 *
 * Only a head start: if the nodes pick another interpreter (a release's
 * python-version, a SACAR_PYTHON the demo cannot resolve), or the unpacking fails,
 * each node unpacks its own as it always would.
 */
import * as Effect from "effect/Effect"
import { mkdir, symlink } from "node:fs/promises"
import { join } from "node:path"
import { findInterpreter } from "../python/interpreter.ts"
import { compileSharedPip, sharedPip } from "../python/pip.ts"
import { DEMO_NODES, type DemoFolder } from "./folder.ts"
import { DEMO_DIR_VARIABLE } from "./leftovers.ts"

/** Points every node's pip cache at the demo's one (before the reconcilers start). */
export async function linkNodesPip(folder: DemoFolder): Promise<void> {
  await mkdir(folder.pip, { recursive: true })
  for (const node of DEMO_NODES) {
    const meta = join(folder.nodeRoot(node), ".sacar")
    await mkdir(meta, { recursive: true })
    await symlink(folder.pip, join(meta, "pip"))
  }
}

/**
 * Unpacks and byte-compiles the pip of the interpreter the nodes use for a release without
 * python-version (SACAR_PYTHON, default python3, on the demo's PATH). Never fails:
 * the nodes unpack it themselves if this did not. The processes carry the demo's
 * mark, so Ctrl-C finds them as it finds pip under the nodes.
 */
export const unpackSharedPip = (folder: DemoFolder, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const interpreter = yield* findInterpreter({ fallback: env.SACAR_PYTHON ?? "python3" }, env.PATH ?? "")
      const mark = { [DEMO_DIR_VARIABLE]: folder.dir }
      // Compiled here too, once, so the nodes find its marker instead of each compiling it.
      yield* compileSharedPip(interpreter, yield* sharedPip(interpreter, folder.pip, mark), mark)
    }).pipe(Effect.ignore),
    { signal }
  ).catch(() => undefined)
