import assert from "node:assert/strict"
import { test } from "node:test"
import { parseWheelName, platformMismatch } from "../../src/pack/wheel-tags.ts"

const cp311Linux = [
  "cp311-cp311-manylinux_2_17_x86_64",
  "cp311-abi3-manylinux_2_17_x86_64",
  "py3-none-manylinux_2_17_x86_64",
  "py3-none-any"
]

test("wheel names expand their compressed tag sets", () => {
  assert.deepEqual(parseWheelName("a-1.0-py2.py3-none-any.whl")?.tags, ["py2-none-any", "py3-none-any"])
  assert.deepEqual(parseWheelName("b-2-1build-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")?.platforms, [
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64"
  ])
  assert.equal(parseWheelName("not-a-wheel.tar.gz"), undefined)
  assert.equal(parseWheelName("too-few.whl"), undefined)
})

test("pure wheels never warn", () => {
  assert.equal(platformMismatch("a-1.0-py3-none-any.whl", cp311Linux, "3.11"), undefined)
  assert.equal(platformMismatch("a-1.0-py3-none-any.whl", [], "3.11"), undefined)
})

test("a Linux wheel the interpreter accepts is fine; one for another Python is not", () => {
  assert.equal(platformMismatch("c-1-cp311-cp311-manylinux_2_17_x86_64.whl", cp311Linux, "3.11"), undefined)
  assert.equal(
    platformMismatch("c-1-cp38-abi3-manylinux_2_17_x86_64.whl", ["cp38-abi3-manylinux_2_17_x86_64"], "3.11"),
    undefined
  )
  assert.match(
    platformMismatch("c-1-cp312-cp312-manylinux_2_17_x86_64.whl", cp311Linux, "3.11") ?? "",
    /c-1-cp312-cp312-manylinux_2_17_x86_64\.whl is built for manylinux_2_17_x86_64 and does not match Python 3\.11/
  )
})

test("a wheel for macOS or Windows warns even where it was built", () => {
  const mac = ["cp311-cp311-macosx_11_0_arm64", "py3-none-any"]
  assert.match(
    platformMismatch("d-1-cp311-cp311-macosx_11_0_arm64.whl", mac, "3.11") ?? "",
    /macosx_11_0_arm64, not Linux/
  )
  assert.match(platformMismatch("e-1-py3-none-win_amd64.whl", [], "3.11") ?? "", /win_amd64, not Linux/)
})

test("a file that is not a wheel name is reported", () => {
  assert.match(platformMismatch("strange.whl", cp311Linux, "3.11") ?? "", /not a wheel file name/)
})
