// The pacing of check-run updates, without I/O: a long prepare whose rendered text
// changes every second stays within the request budget, and phase changes are never held.
import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { phaseOf, updateGap } from "../../src/controller/report/pacing.ts"
import type { CheckView } from "../../src/controller/report/render.ts"

const view = (over: Partial<CheckView> = {}): CheckView => ({
  status: "in_progress",
  conclusion: undefined,
  title: "Preparing",
  summary: "",
  text: undefined,
  actions: [],
  detailsUrl: undefined,
  ...over
})

/** Updates sent for a release whose text changes every second for `seconds`. */
const updatesFor = (seconds: number, coalesceMs = 2_000) => {
  let last = -Infinity
  let sent = 0
  for (let t = 0; t <= seconds * 1000; t += 1000) {
    if (t - last >= updateGap(coalesceMs, 0, t)) {
      sent++
      last = t
    }
  }
  return sent
}

describe("check-run pacing", () => {
  it("a 5-minute prepare that changes every second is sent at most 15 times (2 s windows would send 150)", () => {
    assert.ok(updatesFor(300) <= 15, `${updatesFor(300)} updates`)
  })
  it("grows with the logarithm of the duration: an hour costs only a few more than five minutes", () => {
    assert.ok(updatesFor(3600) - updatesFor(300) <= 6, `${updatesFor(300)} vs ${updatesFor(3600)}`)
  })
  it("never waits less than the coalescing window, nor more than half the release's age", () => {
    assert.equal(updateGap(2_000, 0, 1_000), 2_000)
    assert.equal(updateGap(2_000, 0, 60_000), 30_000)
    assert.equal(updateGap(2_000, undefined, 60_000), 2_000)
  })
  it("a new status, conclusion, button or failed node is a phase change (sent at once)", () => {
    const base = phaseOf(view(), 0)
    assert.equal(phaseOf(view({ title: "3 of 100 nodes ready", summary: "more" }), 0), base)
    assert.notEqual(phaseOf(view(), 1), base)
    assert.notEqual(phaseOf(view({ status: "completed", conclusion: "success" }), 0), base)
    assert.notEqual(phaseOf(view({ actions: [{ label: "Deploy", description: "d", identifier: "deploy" }] }), 0), base)
  })
})
