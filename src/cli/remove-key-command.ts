/** `sacar unlock` and `sacar unpin`: the same shape, deleting one document. */
import * as Effect from "effect/Effect"
import type { Keys } from "../spec/keys.ts"
import { removeDocument } from "../state/writes.ts"
import { appArg, parseCommand, UsageError, withUsage } from "./args.ts"
import { cliKeys, runWithConsul, say } from "./run.ts"

export const removeKeyCommand = (spec: {
  name: string
  help: string
  key: (keys: Keys, app: string) => string
  done: (app: string) => string
  absent: (app: string) => string
}) =>
(argv: string[]): Promise<number> =>
  withUsage(spec.name, async () => {
    const parsed = parseCommand(argv, {}, spec.help)
    if (parsed === undefined) return 0
    const [appText, extra] = parsed.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`)
    const app = appArg(appText)
    const keys = cliKeys()
    return runWithConsul(
      spec.name,
      Effect.gen(function*() {
        const existed = yield* removeDocument(spec.key(keys, app))
        yield* say(existed ? spec.done(app) : spec.absent(app))
        return 0
      })
    )
  })
