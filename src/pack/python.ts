// Chooses the interpreter that builds the wheels, and asks it which wheel tags it accepts.
import { BuildPythonUnavailable, ProjectInvalid } from "./errors.ts"
import { isRunFailure, run } from "./run.ts"

export interface BuildPython {
  /** what was run, e.g. `python3.11` */
  readonly command: string
  /** major.minor, e.g. `3.11` */
  readonly version: string
  /** wheel tags the interpreter installs, most specific first (empty when pip cannot say) */
  readonly tags: ReadonlyArray<string>
}

export const PYTHON_VERSION = /^3\.\d{1,2}$/

/**
 * The flag wins, then the project's `python-version` file, then `python3`; the flag and
 * the file must agree, since the file is what nodes will use.
 */
export function chooseVersion(dir: string, flag: string | undefined, file: string | undefined): string | undefined {
  if (file !== undefined && !PYTHON_VERSION.test(file)) {
    throw new ProjectInvalid({
      dir,
      problem: `python-version holds ${JSON.stringify(file)}, expected major.minor such as 3.11`
    })
  }
  if (flag !== undefined && file !== undefined && flag !== file) {
    throw new ProjectInvalid({
      dir,
      problem: `--python-version ${flag} disagrees with the project's python-version file (${file}); change one of them`
    })
  }
  return flag ?? file
}

const PROBE = [
  "import sys",
  "print('%d.%d' % sys.version_info[:2])",
  "try:",
  "    from pip._vendor.packaging import tags",
  "    for t in tags.sys_tags(): print(t)",
  "except Exception:",
  "    pass"
].join("\n")

export async function findPython(version: string | undefined, env: NodeJS.ProcessEnv): Promise<BuildPython> {
  const command = version === undefined ? "python3" : `python${version}`
  const result = await run(command, ["-c", PROBE], { env })
  if (isRunFailure(result)) {
    const detail = result.spawnError.code === "ENOENT" ? "not found on PATH" : result.spawnError.message
    throw new BuildPythonUnavailable({ command, detail })
  }
  if (result.exitCode !== 0) {
    throw new BuildPythonUnavailable({ command, detail: result.stderr.trim() || `exit code ${result.exitCode}` })
  }
  const [actual = "", ...tags] = result.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  if (version !== undefined && actual !== version) {
    throw new BuildPythonUnavailable({ command, detail: `it reports Python ${actual}, not ${version}` })
  }
  return { command, version: actual, tags }
}
