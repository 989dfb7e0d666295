/**
 * Giving a release to the app's user (SACAR_RUN_AS). The reconciler downloads and
 * unpacks as itself; before the app's code runs, what the release may write (its files
 * and its venv) becomes that user's, while `.sacar` (markers and the lock) stays the
 * reconciler's and is not writable by the app: the app cannot mark its release ready
 * or break the lock. Everything above the release (`current`, the pid and result
 * files, the shared pip, templates and downloads) is never handed over.
 */
import * as Effect from "effect/Effect"
import { lchown, readdir, stat } from "node:fs/promises"
import { join } from "node:path"
import { runProcess } from "../../process/run.ts"
import type { RunAs } from "../app-user.ts"
import { localFailure } from "./errors.ts"
import type { LocalFailure, Step } from "./errors.ts"

/** What stays the reconciler's inside a release. */
const KEPT = ".sacar"

/**
 * `chown -R` without following a link anywhere (`-h`, and `-R`'s default `-P`): a
 * link in the release pointing at `/etc` changes the link, not `/etc`.
 */
const chownTrees = (paths: ReadonlyArray<string>, user: RunAs) =>
  runProcess({
    command: "chown",
    args: ["-hR", `${user.uid}:${user.gid}`, "--", ...paths],
    env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    timeoutMs: 300_000
  })

/** Make `tree` (a venv Sacar copied) the user's; nothing when there is no SACAR_RUN_AS. */
export const giveTree = (tree: string, user: RunAs | undefined, step: Step): Effect.Effect<void, LocalFailure> =>
  user === undefined ? Effect.void : chownTrees([tree], user).pipe(
    Effect.mapError((error) => localFailure(step, `cannot give ${tree} to ${user.name}`, error)),
    Effect.asVoid
  )

/**
 * Make the release directory and all in it but `.sacar` the user's. The directory
 * itself changes last, so its owner says the hand-over is complete: a crash half-way,
 * or a release unpacked before the setting was made, is handed over on the next run.
 */
export const giveRelease = (dir: string, user: RunAs | undefined, step: Step): Effect.Effect<void, LocalFailure> =>
  user === undefined ? Effect.void : Effect.tryPromise({
    try: async () => {
      const now = await stat(dir)
      if (now.uid === user.uid && now.gid === user.gid) return false
      return (await readdir(dir)).filter((name) => name !== KEPT).map((name) => join(dir, name))
    },
    catch: (cause) => localFailure(step, `cannot read ${dir} to give it to ${user.name}`, cause)
  }).pipe(
    Effect.flatMap((entries) =>
      entries === false ? Effect.void : Effect.gen(function*() {
        if (entries.length > 0) {
          yield* chownTrees(entries, user).pipe(
            Effect.mapError((error) => localFailure(step, `cannot give ${dir} to ${user.name}`, error))
          )
        }
        yield* Effect.tryPromise({
          try: () => lchown(dir, user.uid, user.gid),
          catch: (cause) => localFailure(step, `cannot give ${dir} to ${user.name}`, cause)
        })
      })
    )
  )
