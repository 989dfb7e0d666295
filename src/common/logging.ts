/**
 * One line per event. JSON when stderr is not a TTY (Nomad, CI), a compact human
 * form otherwise; `SACAR_LOG_FORMAT` and `SACAR_LOG_LEVEL` override. Fields given
 * with `Effect.annotateLogs({ app, sha, node, step })` become top-level keys, so a
 * log search for one release is a field match.
 */
import * as Cause from "effect/Cause"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import { choiceSetting, type Env } from "./settings.ts"

const LEVELS = ["debug", "info", "warn", "error"] as const
const EFFECT_LEVEL: Record<(typeof LEVELS)[number], LogLevel.LogLevel> = {
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error"
}

const messageText = (message: unknown): { text: string; fields: Record<string, unknown> } => {
  const parts = Array.isArray(message) ? message : [message]
  const texts: string[] = []
  const fields: Record<string, unknown> = {}
  for (const part of parts) {
    if (part !== null && typeof part === "object" && !(part instanceof Error)) Object.assign(fields, part)
    else texts.push(part instanceof Error ? part.message : String(part))
  }
  return { text: texts.join(" "), fields }
}

const lineFields = (options: Logger.Options<unknown>) => {
  const { text, fields } = messageText(options.message)
  const annotations = options.fiber.getRef(References.CurrentLogAnnotations)
  const cause = options.cause.reasons.length === 0 ? undefined : Cause.pretty(options.cause)
  return { text, fields: { ...annotations, ...fields }, cause }
}

export const jsonLogger = Logger.make<unknown, void>((options) => {
  const { text, fields, cause } = lineFields(options)
  const line = {
    time: options.date.toISOString(),
    level: options.logLevel.toLowerCase(),
    msg: text,
    ...fields,
    ...(cause ? { cause } : {})
  }
  process.stderr.write(`${JSON.stringify(line)}\n`)
})

export const prettyLogger = Logger.make<unknown, void>((options) => {
  const { text, fields, cause } = lineFields(options)
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ")
  const time = options.date.toISOString().slice(11, 19)
  process.stderr.write(
    `${time} ${options.logLevel.toUpperCase().padEnd(5)} ${text}${extra ? `  ${extra}` : ""}${
      cause ? `\n${cause}` : ""
    }\n`
  )
})

/** The logging layer for a component, from SACAR_LOG_LEVEL and SACAR_LOG_FORMAT. */
export const loggingLayer = (env: Env) => {
  const level = choiceSetting(env, "SACAR_LOG_LEVEL", LEVELS, "info")
  const format = choiceSetting(env, "SACAR_LOG_FORMAT", ["json", "pretty"], process.stderr.isTTY ? "pretty" : "json")
  return Layer.mergeAll(
    Logger.layer([format === "json" ? jsonLogger : prettyLogger]),
    Layer.succeed(References.MinimumLogLevel, EFFECT_LEVEL[level])
  )
}
