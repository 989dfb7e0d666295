import assert from "node:assert/strict"
import { test } from "node:test"
import { formatGoDuration, parseGoDuration } from "../../src/devconsul/duration.ts"

test("parses Go durations as Consul reads wait, TTL and LockDelay", () => {
  assert.equal(parseGoDuration("10s"), 10e9)
  assert.equal(parseGoDuration("250ms"), 250e6)
  assert.equal(parseGoDuration("1m30s"), 90e9)
  assert.equal(parseGoDuration("1.5h"), 5400e9)
  assert.equal(parseGoDuration("0"), 0)
  assert.equal(parseGoDuration("-2s"), -2e9)
  assert.equal(parseGoDuration("3us"), 3e3)
  assert.equal(parseGoDuration("3µs"), 3e3)
})

test("rejects what Go rejects", () => {
  for (const bad of ["", "10", "s", "1x", "soon", "1s2", "--1s", "1 s"]) {
    assert.equal(parseGoDuration(bad), undefined, bad)
  }
})

test("formats like Go's Duration.String", () => {
  assert.equal(formatGoDuration(10e9), "10s")
  assert.equal(formatGoDuration(24 * 3600e9), "24h0m0s")
  assert.equal(formatGoDuration(90e9), "1m30s")
  assert.equal(formatGoDuration(1.5e9), "1.5s")
  assert.equal(formatGoDuration(250e6), "250ms")
  assert.equal(formatGoDuration(0), "0s")
})
