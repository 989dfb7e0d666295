/** Which requirements files can be judged by their text and the wheels alone. */
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { requirementsReachOut } from "../../../src/reconciler/steps/dependencies.ts"

describe("requirementsReachOut", () => {
  test("pinned names, extras, markers, comments and --hash options stay within the wheels", () => {
    const text = [
      "# pinned by pip-compile",
      "flask==3.0.0 \\",
      "    --hash=sha256:21128f47e4e3b9d597a3e8521a329bf56909b690fcc3fa3e477725aa81367638",
      "requests[socks]>=2.31,<3 ; python_version >= '3.8'",
      "setuptools",
      ""
    ].join("\n")
    assert.equal(requirementsReachOut(text), undefined)
  })

  for (
    const line of [
      ".",
      "-e .",
      "./vendor/thing",
      "/opt/wheels/x.whl",
      "pkg @ https://example.com/pkg.whl",
      "-r other.txt",
      "-c constraints.txt",
      "--index-url https://pypi.org/simple",
      "git+https://github.com/o/r"
    ]
  ) {
    test(`${JSON.stringify(line)} reaches beyond the wheels`, () => {
      assert.match(requirementsReachOut(`flask==3.0.0\n${line}\n`) ?? "", /requirements\.txt line/)
    })
  }
})
