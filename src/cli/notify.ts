/**
 * `sacar notify`: CI's "the artifact is ready". Transient failures (the controller
 * restarting, a 5xx, a refused connection) are retried with backoff for a while;
 * the controller's own refusals (400, 401, 404, 409) are final and printed as it
 * gave them.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { notifyRetry } from "../common/retry.ts"
import { secretSetting, SettingError } from "../common/settings.ts"
import { parseDuration } from "../spec/duration.ts"
import { appArg, parseCommand, shaArg, UsageError, withUsage } from "./args.ts"

const HELP =
  `usage: sacar notify --controller URL --app <app> --sha <sha> [--artifact URL] [--sha256 HEX] [--ref REF] [--timeout DUR]

Tells the controller that the build artifact of a commit is ready, so every node
prepares it. The bearer token comes from SACAR_NOTIFY_TOKEN or SACAR_NOTIFY_TOKEN_FILE.
Transient failures are retried for --timeout (default 2m).

example (in CI):
  sacar notify --controller https://sacar.example.com --app shop --sha "$GITHUB_SHA" \\
    --artifact "gs://acme-builds/shop/$GITHUB_SHA.tgz" --sha256 "$(sha256sum app.tgz | cut -d' ' -f1)"
`

const OPTIONS = {
  controller: { type: "string" },
  app: { type: "string" },
  sha: { type: "string" },
  artifact: { type: "string" },
  sha256: { type: "string" },
  ref: { type: "string" },
  timeout: { type: "string" }
} as const

/** No answer, or a 5xx, 408 or 429: the controller may be restarting, worth another try. */
class ControllerUnanswered extends Data.TaggedError("ControllerUnanswered")<{ readonly message: string }> {}

/** One POST; the exit code once the controller has answered for good. */
const post = (url: URL, token: string, body: string, app: string, sha: string) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body,
        signal: AbortSignal.timeout(15_000)
      })
      return { res, text: await res.text() }
    },
    catch: (cause) => {
      const c = cause as Error & { cause?: { code?: string } }
      return new ControllerUnanswered({ message: c.cause?.code ?? c.message })
    }
  }).pipe(Effect.flatMap(({ res, text }) =>
    Effect.suspend(() => {
      let message = text
      try {
        const parsedBody = JSON.parse(text) as { error?: string }
        if (typeof parsedBody.error === "string")
          message = parsedBody.error
      } catch {
        // not JSON: show the text as it came
      }
      if (res.status === 200 || res.status === 201) {
        process.stdout.write(
          `${res.status === 201 ? "release created" : "release already known"}: ${app} ${sha.slice(0, 7)}\n`
        )
        return Effect.succeed(0)
      }
      if (res.status < 500 && res.status !== 429 && res.status !== 408) {
        process.stderr.write(
          `sacar notify: the controller refused (${res.status}): ${message.trim() || res.statusText}\n`
        )
        return Effect.succeed(1)
      }
      return Effect.fail(new ControllerUnanswered({ message: `${res.status} ${message.trim().slice(0, 200)}` }))
    })
  ))

export const main = (argv: string[]): Promise<number> =>
  withUsage("notify", async () => {
    const parsed = parseCommand(argv, OPTIONS, HELP)
    if (parsed === undefined) return 0
    if (parsed.positionals.length > 0)
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`)
    const v = parsed.values
    if (v.controller === undefined)
      throw new UsageError("missing --controller URL")
    let base: URL
    try {
      base = new URL(v.controller)
    } catch {
      throw new UsageError(
        `--controller must be a URL such as https://sacar.example.com, got ${JSON.stringify(v.controller)}`
      )
    }
    const app = appArg(v.app)
    const sha = shaArg(v.sha)
    if (v.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(v.sha256))
      throw new UsageError("--sha256 must be 64 lowercase hex characters")
    const budget = v.timeout === undefined ? 120_000 : parseDuration(v.timeout)
    if (budget === undefined)
      throw new UsageError(`--timeout must be a duration such as 2m, got ${JSON.stringify(v.timeout)}`)
    let token: string | undefined
    try {
      token = secretSetting(process.env, "SACAR_NOTIFY_TOKEN")
    } catch (e) {
      if (e instanceof SettingError) {
        process.stderr.write(`sacar notify: ${e.message}\n`)
        return 2
      }
      throw e
    }
    if (token === undefined) {
      process.stderr.write(
        "sacar notify: SACAR_NOTIFY_TOKEN is not set: the controller's notify token (or SACAR_NOTIFY_TOKEN_FILE)\n"
      )
      return 2
    }
    const url = new URL(`v1/apps/${app}/releases`, base.href.endsWith("/") ? base : new URL(`${base.href}/`))
    const body = JSON.stringify({
      sha,
      ...(v.artifact !== undefined ? { artifact: v.artifact } : {}),
      ...(v.sha256 !== undefined ? { sha256: v.sha256 } : {}),
      ...(v.ref !== undefined ? { ref: v.ref } : {})
    })
    let attempts = 0
    return Effect.runPromise(
      post(url, token, body, app, sha).pipe(
        Effect.tapError(() => Effect.sync(() => attempts++)),
        Effect.retry(
          notifyRetry(budget).pipe(
            Schedule.setInputType<ControllerUnanswered>(),
            Schedule.tap(({ input, duration }) =>
              Effect.sync(() =>
                process.stderr.write(
                  `sacar notify: ${input.message}; retrying in ${(Duration.toMillis(duration) / 1000).toFixed(1)}s\n`
                )
              )
            )
          )
        ),
        Effect.catch((e) =>
          Effect.sync(() => {
            process.stderr.write(`sacar notify: gave up after ${attempts} attempts: ${e.message}\n`)
            return 1
          })
        )
      )
    )
  })
