import * as Effect from "effect/Effect"
import { findSha, releaseSha } from "../operator/actions.ts"
import { shortSha } from "../spec/names.ts"
import { appArg, parseCommand, shaArg, UsageError, withUsage } from "./args.ts"
import { cliKeys, operatorName, runWithConsul, say } from "./run.ts"

const HELP = `usage: sacar release <app> <sha> [--artifact URL] [--sha256 HEX]

Asks every node of the app to prepare the release (writes sacar/<app>/releases/<sha>).
Without --artifact the app's artifact template is used; --sha256 alone pins the
checksum of the tarball the template names for this sha. Running it again for a
release that failed makes the failed nodes retry.

examples:
  sacar release shop 4f2c...e1 
  sacar release shop 4f2c...e1 --artifact gs://acme-builds/shop/4f2c...e1.tgz --sha256 9b1d...
  # the same with Consul alone:
  consul kv put sacar/shop/releases/<sha> '{}'
`

export const main = (argv: string[]): Promise<number> =>
  withUsage("release", async () => {
    const parsed = parseCommand(argv, { artifact: { type: "string" }, sha256: { type: "string" } }, HELP)
    if (parsed === undefined) return 0
    const [appText, shaText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const typed = shaArg(shaText)
    const { artifact, sha256 } = parsed.values
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256))
      throw new UsageError("--sha256 must be 64 lowercase hex characters")
    const keys = cliKeys()
    return runWithConsul(
      "release",
      Effect.gen(function*() {
        const sha = yield* findSha(keys, app, typed)
        const { existed } = yield* releaseSha(keys, app, sha, {
          by: operatorName(),
          ...(artifact !== undefined ? { artifact } : {}),
          ...(sha256 !== undefined ? { sha256 } : {})
        })
        yield* say(
          existed
            ? `release ${app} ${shortSha(sha)} requested again: nodes where it failed retry it`
            : `release ${app} ${
              shortSha(sha)
            } requested: every node of ${app} prepares it (watch with \`sacar status ${app} --watch\`)`
        )
        return 0
      })
    )
  })
