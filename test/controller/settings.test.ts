// The controller's settings from an environment, in-process: the pruning durations
// and what a bad value says (the CLI prints that one line and exits 2).
import assert from "node:assert/strict"
import { test } from "node:test"
import { SettingError } from "../../src/common/settings.ts"
import { DEFAULT_PRUNING } from "../../src/controller/report/pruning.ts"
import { controllerSettingsFromEnv } from "../../src/controller/settings.ts"

test("the pruning durations default to 72h, 168h and 24h and read Go durations", () => {
  assert.deepEqual(controllerSettingsFromEnv({}).pruning, {
    failedReleaseTtlMs: 72 * 3_600_000,
    recordTtlMs: 168 * 3_600_000,
    artifactWaitMs: 24 * 3_600_000
  })
  assert.deepEqual(DEFAULT_PRUNING, controllerSettingsFromEnv({}).pruning)
  assert.deepEqual(
    controllerSettingsFromEnv({
      SACAR_FAILED_RELEASE_TTL: "1h30m",
      SACAR_RECORD_TTL: "48h",
      SACAR_ARTIFACT_WAIT: "90s"
    })
      .pruning,
    { failedReleaseTtlMs: 5_400_000, recordTtlMs: 48 * 3_600_000, artifactWaitMs: 90_000 }
  )
})

test("a bad pruning duration is a SettingError naming its variable, in one line", () => {
  for (const variable of ["SACAR_FAILED_RELEASE_TTL", "SACAR_RECORD_TTL", "SACAR_ARTIFACT_WAIT"]) {
    for (const value of ["3 days", "72", "0s", "-1h"]) {
      assert.throws(
        () => controllerSettingsFromEnv({ [variable]: value }),
        (e: unknown) =>
          e instanceof SettingError && e.variable === variable && e.message.startsWith(variable) &&
          e.message.includes(JSON.stringify(value)) && !e.message.includes("\n"),
        `${variable}=${value}`
      )
    }
  }
})
