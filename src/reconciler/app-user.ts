/**
 * The user an app's own code runs as (`SACAR_RUN_AS`, docs/operations.md "Who runs the
 * app's scripts"): venv creation, pip, byte-compiling, `bin/prepare`, `bin/pre-deploy`
 * and `bin/deploy`. Without the setting they run as the reconciler's own user.
 *
 * Resolved once at start-up from the system's user database, so a typo stops the
 * reconciler with one line instead of failing every release later. Only root may
 * switch to another user; asking for it without root is refused at start as well.
 */
import * as Context from "effect/Context"
import { execFileSync } from "node:child_process"
import { SettingError } from "../common/settings.ts"

export interface RunAs {
  /** The login name (USER and LOGNAME of the scripts). */
  readonly name: string
  readonly uid: number
  readonly gid: number
  /** HOME of the scripts. */
  readonly home: string
}

/**
 * Who runs the app's code here: undefined for the reconciler's own user. A reference
 * with that default, so the steps and their tests need not provide it.
 */
export const AppUser: Context.Reference<RunAs | undefined> = Context.Reference<RunAs | undefined>(
  "sacar/AppUser",
  { defaultValue: () => undefined }
)

const VARIABLE = "SACAR_RUN_AS"

const refuse = (message: string) => new SettingError({ variable: VARIABLE, message: `${VARIABLE}: ${message}` })

/** `getent passwd <key>`'s entry, or undefined when there is none. */
const passwdEntry = (key: string): { name: string; uid: number; gid: number; home: string } | undefined => {
  let line: string
  try {
    line = execFileSync("getent", ["passwd", key], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
  } catch {
    return undefined // exit 2: no such user
  }
  const [name = "", , uid = "", gid = "", , home = ""] = line.split("\n")[0]!.split(":")
  return { name, uid: Number(uid), gid: Number(gid), home: home === "" ? "/" : home }
}

/**
 * `value` is `<user>` or `<user>:<gid>`, `<user>` a login name or a uid that the user
 * database knows; the gid, when given, replaces the user's primary group.
 * `reconciler` is the reconciler's own identity (`process.getuid()`, `process.getgid()`).
 */
export const resolveRunAs = (
  value: string,
  reconciler: { readonly uid: number; readonly gid: number }
): RunAs => {
  const match = /^([A-Za-z0-9_.][A-Za-z0-9_.-]*\$?)(?::(\d+))?$/.exec(value)
  if (match === null) {
    throw refuse(`expected a user name or uid, optionally followed by :gid, got ${JSON.stringify(value)}`)
  }
  const [, user = "", gid] = match
  const entry = passwdEntry(user)
  if (entry === undefined || !Number.isInteger(entry.uid) || !Number.isInteger(entry.gid)) {
    throw refuse(`no user ${JSON.stringify(user)} on this machine (getent passwd ${user} finds none)`)
  }
  const runAs = { ...entry, ...(gid === undefined ? {} : { gid: Number(gid) }) }
  if (reconciler.uid !== 0 && (runAs.uid !== reconciler.uid || runAs.gid !== reconciler.gid)) {
    throw refuse(
      `running the app's scripts as ${runAs.name} (uid ${runAs.uid}, gid ${runAs.gid}) needs the reconciler to run as root; it runs as uid ${reconciler.uid}, gid ${reconciler.gid}`
    )
  }
  return runAs
}
