import assert from "node:assert/strict"
import { test } from "node:test"
import { checkActions, sanitizeTitle, truncateBytes, truncateChars } from "../../src/github/limits.ts"

test("limits: byte truncation stays on character boundaries and under the limit", () => {
  assert.equal(truncateBytes("short"), "short")
  for (const unit of ["a", "é", "€", "😀"]) {
    const s = unit.repeat(70_000)
    const cut = truncateBytes(s)
    assert.ok(Buffer.byteLength(cut) <= 65535, unit)
    assert.ok(Buffer.byteLength(cut) > 65400, unit)
    assert.ok(!cut.includes("\uFFFD"))
    assert.match(cut, /cut by Sacar/)
  }
  const exact = "a".repeat(65535)
  assert.equal(truncateBytes(exact), exact)
})

test("limits: characters, titles and actions", () => {
  assert.equal(truncateChars("😀".repeat(150), 140), "😀".repeat(139) + "…")
  assert.equal(truncateChars("ok", 140), "ok")
  assert.equal(sanitizeTitle(" \n ", "sacar/app"), "sacar/app")
  assert.equal(sanitizeTitle("a\n\tb", "x"), "a b")
  assert.equal(Array.from(sanitizeTitle("t".repeat(500), "x")).length, 255)
  const ok = checkActions([{ label: "Deploy to production now", description: "d".repeat(50), identifier: "deploy" }])
  assert.ok("ok" in ok)
  assert.equal(ok.ok[0]?.label, "Deploy to productio…")
  assert.equal(ok.ok[0]?.description.length, 40)
  assert.ok("problem" in checkActions([{ label: "x", description: "y", identifier: "" }]))
  assert.ok("problem" in checkActions([{ label: " ", description: "y", identifier: "i" }]))
  assert.ok(
    "problem" in
      checkActions(Array.from({ length: 4 }, (_, i) => ({ label: "l", description: "d", identifier: `i${i}` })))
  )
})
