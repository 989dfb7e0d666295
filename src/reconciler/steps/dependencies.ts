/**
 * What a release's installed dependencies depend on, as one digest: the interpreter
 * (its real path and full version), the pip that installs, pip's arguments, the bytes
 * of `requirements.txt`, and every wheel in `wheels/` by name and sha256 (the name
 * because pip reads versions from it, the content because a corrected wheel can be
 * re-uploaded under the same name). Two releases with the same digest get the same
 * `pip install` result, so the second may copy the first's (see reuse.ts).
 *
 * A requirements file that can reach beyond those inputs has no digest: a path or URL
 * (`.`, `-e .`, `./vendor/x`, `pkg @ https://...`), another file (`-r`, `-c`), or any
 * other option than `--hash`. Those releases always run pip.
 */
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { readdir, readFile } from "node:fs/promises"
import { basename, join } from "node:path"
import { pipeline } from "node:stream/promises"
import { PIP_ARGS } from "../../python/pip.ts"
import type { Interpreter } from "../../python/python.ts"

export type DependencyDigest =
  | { readonly _tag: "Reusable"; readonly digest: string }
  | { readonly _tag: "NoRequirements" }
  | { readonly _tag: "NotReusable"; readonly reason: string }

// A requirement specifier: a name, extras, version clauses and markers, then `--hash=` options.
const PLAIN_REQUIREMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[A-Za-z0-9._,\s-]*\])?\s*([<>=!~;(][^@]*)?$/
const HASH_OPTION = /\s+--hash[= ][a-z0-9]+:[0-9a-fA-F]+/g

/** Why `requirements` may install something beyond its own text and the wheels, or undefined. */
export const requirementsReachOut = (requirements: string): string | undefined => {
  const logical = requirements.replace(/\\\r?\n/g, " ").split(/\r?\n/)
  for (const raw of logical) {
    const line = raw.replace(/(^|\s)#.*$/, "").replace(HASH_OPTION, "").trim()
    if (line === "") continue
    if (!PLAIN_REQUIREMENT.test(line)) return `requirements.txt line ${JSON.stringify(raw.trim())}`
  }
  return undefined
}

const fileSha256 = async (path: string) => {
  const hash = createHash("sha256")
  await pipeline(createReadStream(path), hash)
  return hash.digest("hex")
}

export const dependencyDigest = (releaseDir: string, interpreter: Interpreter): Effect.Effect<DependencyDigest> =>
  Effect.promise(async (): Promise<DependencyDigest> => {
    const requirements = await readFile(join(releaseDir, "requirements.txt"), "utf8").catch(() => undefined)
    if (requirements === undefined) return { _tag: "NoRequirements" }
    const reach = requirementsReachOut(requirements)
    if (reach !== undefined) return { _tag: "NotReusable", reason: `${reach} can install more than the wheels` }
    const names = (await readdir(join(releaseDir, "wheels")).catch(() => [] as Array<string>)).sort()
    const wheels = await Promise.all(
      names.map(async (name) => [name, await fileSha256(join(releaseDir, "wheels", name))])
    )
      .catch(() => undefined)
    if (wheels === undefined)
      return { _tag: "NotReusable", reason: "wheels/ holds something that is not a readable file" }
    const identity = {
      python: { path: interpreter.path, version: interpreter.version },
      pip: interpreter.bundledPip === undefined ? null : basename(interpreter.bundledPip),
      args: PIP_ARGS,
      requirements,
      wheels
    }
    return { _tag: "Reusable", digest: createHash("sha256").update(JSON.stringify(identity)).digest("hex") }
  })
