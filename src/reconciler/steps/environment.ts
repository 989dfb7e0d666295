/**
 * The environments Sacar's children see, built from nothing rather than filtered
 * from Sacar's own: tokens, CONSUL_*, GITHUB_*, PYTHON* and PIP_* settings of the
 * reconciler never reach an app's scripts or pip.
 */
import { join } from "node:path"
import type { RunAs } from "../app-user.ts"

export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/** `user`: SACAR_RUN_AS, whose home and name the child gets instead of the reconciler's. */
const base = (venv: string, user: RunAs | undefined): Record<string, string> => ({
  PATH: `${join(venv, "bin")}:${SYSTEM_PATH}`,
  HOME: user?.home ?? process.env.HOME ?? "/",
  ...(user === undefined ? {} : { USER: user.name, LOGNAME: user.name }),
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
export const scriptEnvironment = (context: ScriptContext, user: RunAs | undefined): Record<string, string> => ({
  ...base(context.venv, user),
  COMMIT_SHA: context.sha,
  SACAR_APP: context.app,
  SACAR_NODE: context.node,
  SACAR_RELEASE_DIR: context.releaseDir,
  ...(context.previousReleaseDir === undefined ? {} : { SACAR_PREVIOUS_RELEASE_DIR: context.previousReleaseDir })
})

/** For venv creation and pip: no index, no config files, no prompts. */
export const pipEnvironment = (venv: string, user: RunAs | undefined): Record<string, string> => ({
  ...base(venv, user),
  PIP_CONFIG_FILE: "/dev/null",
  PIP_NO_INDEX: "1",
  PIP_DISABLE_PIP_VERSION_CHECK: "1",
  PIP_NO_INPUT: "1"
})
