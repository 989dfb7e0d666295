/**
 * The environments Sacar's children see, built from nothing rather than filtered
 * from Sacar's own: tokens, CONSUL_*, GITHUB_*, PYTHON* and PIP_* settings of the
 * reconciler never reach an app's scripts or pip.
 */
import { join } from "node:path"

export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const base = (venv: string): Record<string, string> => ({
  PATH: `${join(venv, "bin")}:${SYSTEM_PATH}`,
  HOME: process.env.HOME ?? "/",
  LANG: process.env.LANG ?? "C.UTF-8",
  VIRTUAL_ENV: venv
})

export interface ScriptContext {
  readonly app: string
  readonly sha: string
  readonly node: string
  readonly releaseDir: string
  readonly venv: string
  /** Only for bin/deploy: the release live before this deploy ("" when none). */
  readonly previousReleaseDir?: string | undefined
}

/** For bin/prepare, bin/pre-deploy and bin/deploy (docs/contract.md §4). */
export const scriptEnvironment = (context: ScriptContext): Record<string, string> => ({
  ...base(context.venv),
  COMMIT_SHA: context.sha,
  SACAR_APP: context.app,
  SACAR_NODE: context.node,
  SACAR_RELEASE_DIR: context.releaseDir,
  ...(context.previousReleaseDir === undefined ? {} : { SACAR_PREVIOUS_RELEASE_DIR: context.previousReleaseDir })
})

/** For venv creation and pip: no index, no config files, no prompts. */
export const pipEnvironment = (venv: string): Record<string, string> => ({
  ...base(venv),
  PIP_CONFIG_FILE: "/dev/null",
  PIP_NO_INDEX: "1",
  PIP_DISABLE_PIP_VERSION_CHECK: "1",
  PIP_NO_INPUT: "1"
})
