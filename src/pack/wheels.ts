// Resolves requirements.txt into a directory of wheels with `pip wheel`.
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { WheelBuildFailed } from "./errors.ts"
import type { BuildPython } from "./python.ts"
import { isRunFailure, run, tailChars } from "./run.ts"

export interface WheelOptions {
  readonly python: BuildPython
  readonly projectDir: string
  readonly outDir: string
  readonly findLinks: ReadonlyArray<string>
  readonly noIndex: boolean
}

/**
 * PIP_* variables that only say how to reach an index; every other pip setting, and
 * every pip configuration file, is ignored so that the flags alone decide the build.
 */
const KEPT_PIP_VARIABLES = new Set([
  "PIP_INDEX_URL",
  "PIP_EXTRA_INDEX_URL",
  "PIP_TRUSTED_HOST",
  "PIP_CERT",
  "PIP_CLIENT_CERT",
  "PIP_DEFAULT_TIMEOUT",
  "PIP_RETRIES"
])

export function wheelBuildEnvironment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(base)) {
    if (!k.startsWith("PIP_") || KEPT_PIP_VARIABLES.has(k)) env[k] = v
  }
  env.PIP_CONFIG_FILE = "/dev/null"
  return env
}

export function pipWheelArgs(o: WheelOptions): string[] {
  return [
    "-m",
    "pip",
    "wheel",
    "--disable-pip-version-check",
    "--no-input",
    "-r",
    "requirements.txt",
    "-w",
    o.outDir,
    ...(o.noIndex ? ["--no-index"] : []),
    ...o.findLinks.flatMap((d) => ["--find-links", d])
  ]
}

/** True when requirements.txt names nothing (only blanks and comments). */
export function namesNothing(requirements: string): boolean {
  return requirements.split("\n").every((l) => l.replace(/(^|\s)#.*$/, "").trim() === "")
}

/** Builds or copies every wheel the requirements need into `outDir`; returns their file names. */
export async function buildWheels(o: WheelOptions, env: NodeJS.ProcessEnv): Promise<string[]> {
  const requirements = await readFile(join(o.projectDir, "requirements.txt"), "utf8")
  // pip wheel runs fine on an empty file, but there is nothing to ask it
  if (namesNothing(requirements)) return []
  const args = pipWheelArgs(o)
  const command = `${o.python.command} ${args.join(" ")}`
  const result = await run(o.python.command, args, { cwd: o.projectDir, env: wheelBuildEnvironment(env) })
  if (isRunFailure(result)) throw new WheelBuildFailed({ command, exitCode: null, log: result.spawnError.message })
  if (result.exitCode !== 0) {
    throw new WheelBuildFailed({
      command,
      exitCode: result.exitCode,
      log: tailChars(`${result.stdout}\n${result.stderr}`)
    })
  }
  return (await readdir(o.outDir)).filter((f) => f.endsWith(".whl")).sort()
}
