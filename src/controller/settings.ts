/**
 * The controller's own settings (docs/contract.md §2), read once at start-up. Consul's
 * CONSUL_* variables and GitHub's GITHUB_API_URL / GITHUB_APP_* / GITHUB_TOKEN are read
 * by their own modules; this file covers the inbound side. Secrets stay `Redacted`, so
 * a stray log of the settings object prints `<redacted>`.
 */
import * as Redacted from "effect/Redacted"
import {
  durationSetting,
  type Env,
  listenSetting,
  optionalSetting,
  prefixSetting,
  secretSetting,
  SettingError
} from "../common/settings.ts"
import { DEFAULT_PRUNING, type PruningSettings } from "./report/pruning.ts"

export interface ControllerSettings {
  readonly listen: { readonly host: string; readonly port: number }
  /** Base for `details_url` links, without a trailing slash. */
  readonly publicUrl: string | undefined
  readonly prefix: string
  /** undefined: webhooks are off and `POST /github/webhook` answers 503. */
  readonly webhookSecret: Redacted.Redacted<string> | undefined
  /** GITHUB_WEBHOOK_SECRET_PREVIOUS: also accepted while a secret rotation is under way. */
  readonly previousWebhookSecret: Redacted.Redacted<string> | undefined
  /** undefined: `POST /v1/apps/<app>/releases` is off and answers 503. */
  readonly notifyToken: Redacted.Redacted<string> | undefined
  /** SACAR_READ_TOKEN; undefined: `GET /v1/apps...` is off and answers 503. */
  readonly readToken: Redacted.Redacted<string> | undefined
  /** GITHUB_APP_ID, to recognise the Deployments this App created itself. */
  readonly githubAppId: string | undefined
  /** SACAR_FAILED_RELEASE_TTL, SACAR_RECORD_TTL, SACAR_ARTIFACT_WAIT (report/pruning.ts). */
  readonly pruning: PruningSettings
}

export const DEFAULT_LISTEN = "127.0.0.1:8080"

/** Throws SettingError (exit 2) naming the variable that is wrong. */
export const controllerSettingsFromEnv = (env: Env): ControllerSettings => {
  const listen = listenSetting(env, "SACAR_LISTEN", DEFAULT_LISTEN)
  const publicUrlText = optionalSetting(env, "SACAR_PUBLIC_URL")
  let publicUrl: string | undefined
  if (publicUrlText !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(publicUrlText)
    } catch {
      url = undefined
    }
    if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new SettingError({
        variable: "SACAR_PUBLIC_URL",
        message: `SACAR_PUBLIC_URL must be an http(s) URL such as https://sacar.example.com, got ${
          JSON.stringify(publicUrlText)
        }`
      })
    }
    publicUrl = url.toString().replace(/\/+$/, "")
  }
  const prefix = prefixSetting(env)
  const webhookSecret = secretSetting(env, "GITHUB_WEBHOOK_SECRET")
  const previousWebhookSecret = secretSetting(env, "GITHUB_WEBHOOK_SECRET_PREVIOUS")
  const notifyToken = secretSetting(env, "SACAR_NOTIFY_TOKEN")
  const readToken = secretSetting(env, "SACAR_READ_TOKEN")
  if (previousWebhookSecret !== undefined && webhookSecret === undefined) {
    throw new SettingError({
      variable: "GITHUB_WEBHOOK_SECRET_PREVIOUS",
      message: "GITHUB_WEBHOOK_SECRET_PREVIOUS is set without GITHUB_WEBHOOK_SECRET; set the new secret too"
    })
  }
  return {
    listen,
    publicUrl,
    prefix,
    webhookSecret: webhookSecret === undefined
      ? undefined
      : Redacted.make(webhookSecret, { label: "GITHUB_WEBHOOK_SECRET" }),
    previousWebhookSecret: previousWebhookSecret === undefined
      ? undefined
      : Redacted.make(previousWebhookSecret, { label: "GITHUB_WEBHOOK_SECRET_PREVIOUS" }),
    notifyToken: notifyToken === undefined ? undefined : Redacted.make(notifyToken, { label: "SACAR_NOTIFY_TOKEN" }),
    readToken: readToken === undefined ? undefined : Redacted.make(readToken, { label: "SACAR_READ_TOKEN" }),
    githubAppId: optionalSetting(env, "GITHUB_APP_ID"),
    pruning: {
      failedReleaseTtlMs: durationSetting(env, "SACAR_FAILED_RELEASE_TTL", DEFAULT_PRUNING.failedReleaseTtlMs),
      recordTtlMs: durationSetting(env, "SACAR_RECORD_TTL", DEFAULT_PRUNING.recordTtlMs),
      artifactWaitMs: durationSetting(env, "SACAR_ARTIFACT_WAIT", DEFAULT_PRUNING.artifactWaitMs)
    }
  }
}
