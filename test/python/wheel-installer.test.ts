/**
 * installWheels must leave what pip leaves: the same release installed into two venvs at
 * paths of one length, one by the interpreter's bundled pip (`PIP_ARGS`), the other by
 * installWheels with the wheels planInstall chose (both uncompiled, as the install step
 * compiles either alike), must hold the same files (bytes, with the venv's path as `<venv>`),
 * the same RECORDs and the same modes, for every Python on this machine whose bundled
 * pip is one the installer follows. And planInstall must leave to pip every release it
 * cannot settle for certain.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { copyFile, mkdir, readdir, realpath, writeFile } from "node:fs/promises"
import { homedir } from "node:os"
import { basename, join } from "node:path"
import { describe, test } from "node:test"
import { promisify } from "node:util"
import { findInterpreter, type Interpreter, probe } from "../../src/python/interpreter.ts"
import { PIP_ARGS } from "../../src/python/pip.ts"
import { makePython } from "../../src/python/python.ts"
import { followsPip, installWheels, planInstall } from "../../src/python/wheel-installer.ts"
import { pipEnvironment } from "../../src/reconciler/steps/environment.ts"
import { PIP_CACHE, scratch } from "../reconciler/steps/harness.ts"
import { contents, modes } from "../support/venv-contents.ts"
import { buildWheel, type WheelSpec } from "../support/wheels.ts"

const exec = promisify(execFile)

/** The test run's `python3` (the node's default), then every pyenv Python, each once. */
const machinePythons = async (): Promise<{ node: Interpreter; followed: ReadonlyArray<Interpreter> }> => {
  const node = await Effect.runPromise(findInterpreter({ fallback: "python3" }, process.env.PATH ?? ""))
  const versions = join(process.env.PYENV_ROOT ?? join(homedir(), ".pyenv"), "versions")
  const candidates: Array<string> = []
  for (const version of await readdir(versions).catch(() => [] as Array<string>)) {
    const bin = join(versions, version, "bin")
    for (const name of await readdir(bin).catch(() => [] as Array<string>)) {
      if (/^python\d+\.\d+$/.test(name)) candidates.push(join(bin, name))
    }
  }
  const probed = await Promise.all(candidates.map((c) => Effect.runPromise(Effect.result(probe(c)))))
  // One of each executable (python3 and python3.11 are often one file).
  const all = new Map<string, Interpreter>([[await realpath(node.path), node]])
  for (const r of probed) {
    if (r._tag !== "Success") continue
    const real = await realpath(r.success.path)
    if (!all.has(real)) all.set(real, r.success)
  }
  const followed = [...all.values()].filter((i) => i.bundledPip !== undefined && followsPip(i.bundledPip))
  return { node, followed }
}

const pythons = await machinePythons()
const python = makePython(process.env.PATH ?? "")

/** `<venv python> <this> install ...` runs the interpreter's bundled pip: the shared compiled copy for the node's, the wheel itself for the others. */
const pipFor = async (interpreter: Interpreter) =>
  interpreter.path === pythons.node.path
    ? join(await Effect.runPromise(python.pip(interpreter, PIP_CACHE)), "pip")
    : join(interpreter.bundledPip!, "pip")

const venv = async (interpreter: Interpreter, path: string) => {
  await exec(interpreter.path, ["-I", "-m", "venv", "--without-pip", path])
  return { python: join(path, "bin", "python"), env: pipEnvironment(path, undefined) }
}

const writeRelease = async (dir: string, wheels: ReadonlyArray<WheelSpec>, requirements: ReadonlyArray<string>) => {
  for (const wheel of wheels) await buildWheel({ ...wheel, dir: join(dir, "wheels") })
  await writeFile(join(dir, "requirements.txt"), requirements.join("\n") + "\n")
}

/** A wheel with console and GUI entry points, and Requires-Dist lines the pins settle or the markers rule out. */
const entryKit: WheelSpec = {
  name: "entry-kit",
  version: "2.1",
  modules: {
    "entry_kit/__init__.py": "def main():\n    print('console ok')\n    return 0\n",
    "entry_kit/mod.py":
      "class Class:\n    @staticmethod\n    def method():\n        print('method ok')\n        return 0\n",
    "entry_kit-2.1.dist-info/entry_points.txt": [
      "[console_scripts]",
      "kit = entry_kit:main",
      "kit-method = entry_kit.mod:Class.method",
      "kit-extra = entry_kit:main [x]",
      "",
      "[gui_scripts]",
      "kit-gui = entry_kit.mod:Class.method",
      "",
      "[other.group]",
      "thing = entry_kit:main",
      ""
    ].join("\n")
  },
  requires: [
    "pkg0==1.0.0",
    "pkg1 (>=1.0)",
    "pkg2>=0.5,<2; python_version >= \"3\"",
    "unpinned-extra>=1; extra == \"x\"",
    "helper-dep>=1",
    "py2-only; python_version < \"3\""
  ]
}

/** `.data/scripts` (one to rewrite, one not, one not executable), `.data/purelib`, an executable module, a file RECORD omits. */
const dataKit: WheelSpec = {
  name: "data_kit",
  version: "0.3",
  modules: {
    "data_kit/__init__.py": "X = 1\n",
    "data_kit/run.sh": "#!/bin/sh\necho run\n",
    "data_kit/unlisted.py": "NOT_IN_RECORD = True\n",
    "data_kit-0.3.data/scripts/tool": "#!python\nimport data_kit\nprint('tool ok')\n",
    "data_kit-0.3.data/scripts/plain.sh": "#!/bin/sh\necho plain\n",
    "data_kit-0.3.data/scripts/unmarked": "#!python\nprint('unmarked')\n",
    "data_kit-0.3.data/purelib/data_kit_extra.py": "EXTRA = 1\n"
  },
  executable: ["data_kit/run.sh", "data_kit-0.3.data/scripts/tool", "data_kit-0.3.data/scripts/plain.sh"],
  unrecorded: ["data_kit/unlisted.py"]
}

/** The varied release for `interpreter`, its requirements pinning every name. */
const variedRelease = async (dir: string, interpreter: Interpreter) => {
  const xy = interpreter.minor.replace(".", "")
  const platform = (await exec(interpreter.path, ["-I", "-c", "import sysconfig; print(sysconfig.get_platform())"]))
    .stdout.trim().replace(/[-.]/g, "_")
  const wheels: Array<WheelSpec> = [
    ...Array.from({ length: 3 }, (_, i) => ({
      name: `pkg${i}`,
      version: "1.0.0",
      modules: { [`pkg${i}/__init__.py`]: `VALUE = ${i}\n`, [`pkg${i}/util.py`]: "def double(x):\n    return 2 * x\n" }
    })),
    { name: "Dotted.Name", version: "1.0", modules: { "dotted_name/__init__.py": "" } },
    entryKit,
    dataKit,
    {
      name: "native-kit",
      version: "1.0",
      tag: `cp${xy}-abi3-${platform}`,
      modules: {
        "native_kit/__init__.py": "NATIVE = True\n",
        "native_kit-1.0.data/purelib/native_pure.py": "PURE = True\n",
        "native_kit-1.0.data/platlib/native_plat.py": "PLAT = True\n"
      }
    },
    // Two wheels of one pin pip ranks differently, and ones it passes over.
    { name: "choice", version: "1.0", modules: { "choice/__init__.py": "WHICH = 'generic'\n" } },
    {
      name: "choice",
      version: "1.0",
      tag: `cp${xy}-none-any`,
      modules: { "choice/__init__.py": "WHICH = 'specific'\n" }
    },
    { name: "choice", version: "1.0", tag: "cp27-cp27mu-linux_x86_64", modules: { "choice/__init__.py": "" } },
    { name: "choice", version: "0.9", modules: { "choice/__init__.py": "WHICH = 'old'\n" } },
    { name: "stray", version: "1.0", modules: { "stray.py": "" } },
    { name: "helper-dep", version: "1.2", modules: { "helper_dep.py": "" } }
  ]
  const requirements = [
    "# pins, a range and a bare name; helper-dep comes only as entry-kit's dependency",
    "pkg0==1.0.0",
    "pkg1>=0.9  # a range, one version in wheels/",
    "pkg2 == 1.0.0",
    "Dotted.Name==1.0.0",
    "entry-kit==2.1",
    "data_kit",
    "native-kit==1.0",
    "choice==1.0"
  ]
  // The interpreter's own setuptools, where it bundles one without easy_install scripts
  // (which pip names its own way, so the plan declines them: see the declines).
  const setuptools = await bundledSetuptools(interpreter)
  const withSetuptools = setuptools !== undefined && !setuptools.scripts
  if (withSetuptools) {
    await mkdir(join(dir, "wheels"), { recursive: true })
    await copyFile(setuptools.path, join(dir, "wheels", setuptools.name))
    requirements.push(`setuptools==${setuptools.version}`)
  }
  await writeRelease(dir, wheels, requirements)
  return { planned: requirements.length, withSetuptools }
}

/**
 * pip into `a`, installWheels into `b` (its plan must be Direct), both with pip's
 * `--no-compile`; then the two compared. Both are compiled afterwards by the same
 * compileInstalled, whose result test/python/compile.test.ts compares with pip's own.
 */
const installBothWays = async (interpreter: Interpreter, dir: string, a: string, b: string) => {
  const [byPip, direct] = [await venv(interpreter, a), await venv(interpreter, b)]
  const plan = await Effect.runPromise(planInstall(interpreter, { cwd: dir, env: direct.env }))
  assert.equal(plan._tag, "Direct", `${interpreter.version}: ${plan._tag === "Pip" ? plan.why : ""}`)
  await Promise.all([
    exec(byPip.python, [await pipFor(interpreter), ...PIP_ARGS], { cwd: dir, env: byPip.env }),
    Effect.runPromise(
      installWheels(direct.python, plan._tag === "Direct" ? plan.wheels : [], { cwd: dir, env: direct.env })
    )
  ])
  const [expected, actual] = [await contents(a), await contents(b)]
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), interpreter.version)
  for (const [path, body] of expected) assert.equal(actual.get(path), body, `${interpreter.version}: ${path}`)
  const [expectedModes, actualModes] = [await modes(a), await modes(b)]
  assert.deepEqual(Object.fromEntries(actualModes), Object.fromEntries(expectedModes), interpreter.version)
  return { plan, files: expected, direct }
}

/** The setuptools wheel `interpreter` bundles, if any, and whether it has console scripts (easy_install). */
const bundledSetuptools = async (interpreter: Interpreter) => {
  const bundled = join(interpreter.bundledPip!, "..")
  const name = (await readdir(bundled)).find((f) => /^setuptools-.*\.whl$/.test(f))
  if (name === undefined) return undefined
  const path = join(bundled, name)
  const { stdout } = await exec(interpreter.path, [
    "-I",
    "-c",
    "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(any(n.endswith('.dist-info/entry_points.txt') and b'[console_scripts]' in z.read(n) for n in z.namelist()))",
    path
  ])
  return { path, name, version: name.split("-")[1]!, scripts: stdout.trim() === "True" }
}

const run = async (command: string, env: Record<string, string>) => (await exec(command, [], { env })).stdout

describe("installing wheels directly", () => {
  test("with every Python whose pip is followed, the direct install gives what pip gives", async (t) => {
    assert.ok(pythons.followed.length > 0, "no Python with a followed pip on this machine")
    t.diagnostic(
      `compared with pip: ${pythons.followed.map((i) => `${i.version} (${basename(i.bundledPip!)})`).join(", ")}`
    )
    const dir = await scratch(t, "sacar-wheel-installer-")
    await Promise.all(pythons.followed.map(async (interpreter) => {
      const home = join(dir, interpreter.minor)
      const release = join(home, "release")
      const { planned, withSetuptools } = await variedRelease(release, interpreter)
      const { plan, files, direct } = await installBothWays(
        interpreter,
        release,
        join(home, "a", ".venv"),
        join(home, "b", ".venv")
      )
      assert.equal(plan._tag === "Direct" && plan.wheels.length, planned)
      const lib = `lib/python${interpreter.minor}/site-packages`
      // What the comparison covered, so a release that lost its variety cannot pass unnoticed.
      for (
        const path of [
          "bin/kit",
          "bin/kit-gui",
          "bin/tool",
          "bin/plain.sh",
          "bin/unmarked",
          `${lib}/data_kit/unlisted.py`,
          `${lib}/data_kit_extra.py`,
          `${lib}/native_pure.py`,
          `${lib}/native_kit-1.0.dist-info/RECORD`,
          `${lib}/entry_kit-2.1.dist-info/INSTALLER`,
          `${lib}/entry_kit-2.1.dist-info/REQUESTED`,
          `${lib}/helper_dep-1.2.dist-info/INSTALLER`
        ]
      ) assert.ok(files.has(path), `${interpreter.version}: ${path}`)
      // Only a dependency: pip does not mark it requested.
      assert.ok(!files.has(`${lib}/helper_dep-1.2.dist-info/REQUESTED`), interpreter.version)
      assert.equal(withSetuptools, [...files.keys()].some((p) => p.startsWith(`${lib}/setuptools/`)))
      assert.equal(files.get(`${lib}/choice/__init__.py`), "WHICH = 'specific'\n")
      assert.match(files.get("bin/tool")!, /^#!<venv>\/bin\/python\n/)
      const bin = join(home, "b", ".venv", "bin")
      assert.equal(await run(join(bin, "kit"), direct.env), "console ok\n")
      assert.equal(await run(join(bin, "kit-method"), direct.env), "method ok\n")
      assert.equal(await run(join(bin, "kit-extra"), direct.env), "console ok\n")
      assert.equal(await run(join(bin, "tool"), direct.env), "tool ok\n")
      assert.equal(await run(join(bin, "plain.sh"), direct.env), "plain\n")
    }))
  })

  test("a venv path too long for a plain shebang, and one with a space, as pip", async (t) => {
    const dir = await scratch(t, "sacar-wheel-installer-")
    const interpreter = pythons.node
    const long = "l".repeat(Math.max(1, 130 - join(dir, "long", "a", "/.venv/bin/python").length))
    await Promise.all(
      [["long", join("a", long), join("b", long)], ["space", "a b", "b b"]].map(async ([name, a, b]) => {
        const release = join(dir, name!, "release")
        await writeRelease(release, [
          entryKit,
          dataKit,
          ...["pkg0", "pkg1", "pkg2", "helper-dep"].map((n) => ({
            name: n,
            version: "1.0.0",
            modules: { [`${n}/__init__.py`]: "" }
          }))
        ], ["entry-kit==2.1", "data_kit==0.3", "pkg0==1.0.0", "pkg1==1.0.0", "pkg2==1.0.0"])
        const venvA = join(dir, name!, a!, ".venv")
        const { files, direct } = await installBothWays(interpreter, release, venvA, join(dir, name!, b!, ".venv"))
        const kit = files.get("bin/kit")!
        if (name === "long") {
          assert.ok(`#!${venvA}/bin/python`.length > 127)
          assert.match(kit, /^#!\/bin\/sh\n'''exec' <venv>\/bin\/python "\$0" "\$@"\n' '''\n/)
        } else {
          assert.match(kit, /^#!\/bin\/sh\n'''exec' "<venv>\/bin\/python" "\$0" "\$@"\n' '''\n/)
        }
        const bin = join(dir, name!, b!, ".venv", "bin")
        assert.equal(await run(join(bin, "kit"), direct.env), "console ok\n")
        assert.equal(await run(join(bin, "kit-method"), direct.env), "method ok\n")
      })
    )
  })

  test("a release the plan cannot settle for certain is left to pip, with the reason", async (t) => {
    const dir = await scratch(t, "sacar-wheel-installer-")
    const interpreter = pythons.node
    const pkg = (name: string, extra: Partial<WheelSpec> = {}): WheelSpec => ({
      name,
      version: "1.0.0",
      modules: { [`${name}/__init__.py`]: `NAME = '${name}'\n` },
      ...extra
    })
    const cases: ReadonlyArray<
      readonly [string, ReadonlyArray<WheelSpec>, ReadonlyArray<string>, RegExp, ReadonlyArray<string>?]
    > = [
      [
        "a range with two versions",
        [pkg("pkg0"), pkg("pkg0", { version: "1.1.0" })],
        ["pkg0>=1"],
        /versions 1.0.0, 1.1.0 of pkg0, which pip would choose between/,
        ["pkg0"]
      ],
      [
        "a marker not certain here",
        [pkg("pkg0")],
        ["pkg0==1.0.0; platform_release >= \"1\""],
        /whose marker is not certain here/
      ],
      ["extras", [pkg("pkg0")], ["pkg0[x]==1.0.0"], /'pkg0\[x\]==1.0.0', which pip reads more into/],
      ["an option", [pkg("pkg0")], ["--index-url https://example.invalid", "pkg0==1.0.0"], /'--index-url/],
      [
        "a dependency with two versions",
        [pkg("pkg0", { requires: ["pkg1"] }), pkg("pkg1"), pkg("pkg1", { version: "1.1.0" })],
        ["pkg0==1.0.0"],
        /versions 1.0.0, 1.1.0 of pkg1, which pip would choose between/,
        ["pkg0", "pkg1"]
      ],
      [
        "a dependency without a wheel",
        [pkg("pkg0", { requires: ["absent>=1"] })],
        ["pkg0==1.0.0"],
        /wheels\/ has no wheel of absent that this Python can install/
      ],
      [
        "a dependency not satisfied",
        [pkg("pkg0", { requires: ["pkg1>=2"] }), pkg("pkg1")],
        ["pkg0==1.0.0", "pkg1==1.0.0"],
        /pkg0-1.0.0-py3-none-any.whl needs pkg1>=2; the wheel pip can take is pkg1-1.0.0/
      ],
      [
        "two wheels pip ranks alike",
        [pkg("pkg0"), pkg("pkg0", { tag: "py2.py3-none-any" })],
        ["pkg0==1.0.0"],
        /several wheels of pkg0 1.0.0/
      ],
      ["build tag", [pkg("pkg0", { build: "1" })], ["pkg0==1.0.0"], /has a build tag/],
      [
        "INSTALLER shipped",
        [pkg("pkg0", { modules: { "pkg0/__init__.py": "", "pkg0-1.0.0.dist-info/INSTALLER": "other\n" } })],
        ["pkg0==1.0.0"],
        /ships pkg0-1.0.0.dist-info\/INSTALLER, which pip writes itself/
      ],
      [
        "two wheels writing one file",
        [
          pkg("pkg0", { modules: { "shared/__init__.py": "A = 0\n" } }),
          pkg("pkg1", { modules: { "shared/__init__.py": "A = 1\n" } })
        ],
        ["pkg0==1.0.0", "pkg1==1.0.0"],
        /pkg0-1.0.0-py3-none-any.whl and pkg1-1.0.0-py3-none-any.whl both install shared\/__init__.py/
      ]
    ]
    await Promise.all(cases.map(async ([name, wheels, requirements, why, installs]) => {
      const release = join(dir, name.replaceAll(" ", "-"))
      await writeRelease(release, wheels, requirements)
      const v = await venv(interpreter, join(release, ".venv"))
      const plan = await Effect.runPromise(planInstall(interpreter, { cwd: release, env: v.env }))
      assert.equal(plan._tag, "Pip", name)
      assert.match(plan._tag === "Pip" ? plan.why : "", why, name)
      if (installs === undefined) return
      // Left to pip, the release installs as pip installs it.
      await exec(v.python, [await pipFor(interpreter), ...PIP_ARGS], { cwd: release, env: v.env })
      const { stdout } = await exec(v.python, [
        "-I",
        "-c",
        `import ${installs.join(", ")}; print(${installs.map((n) => `${n}.NAME`).join(", ")})`
      ], { env: v.env })
      assert.equal(stdout, installs.join(" ") + "\n", name)
    }))
  })

  test("a dependency without a wheel is left out only where its marker is certainly false", async (t) => {
    const dir = await scratch(t, "sacar-wheel-installer-")
    const cases: ReadonlyArray<readonly [string, "Direct" | "Pip"]> = [
      ["python_version < \"3\" and sys_platform == \"linux\"", "Direct"],
      ["os_name == \"nt\" or (python_version < \"3\" and extra == \"x\")", "Direct"],
      ["python_version >= \"3\" or extra == \"x\"", "Pip"],
      ["python_full_version ~= \"3.0\"", "Pip"],
      // Not a plain release on either side: packaging's answer is not certain here.
      ["platform_release >= \"1\" and python_version < \"3\"", "Pip"],
      ["python_version < \"3\" and", "Pip"]
    ]
    await Promise.all(cases.map(async ([marker, expected], i) => {
      const release = join(dir, String(i))
      await writeRelease(release, [{
        name: "pkg0",
        version: "1.0.0",
        modules: { "pkg0/__init__.py": "" },
        requires: [`absent>=1; ${marker}`]
      }], ["pkg0==1.0.0"])
      const plan = await Effect.runPromise(
        planInstall(pythons.node, { cwd: release, env: pipEnvironment(release, undefined) })
      )
      assert.equal(plan._tag, expected, marker)
    }))
  })

  test("a file that cannot be written fails the install, with the share's reason", async (t) => {
    const dir = await scratch(t, "sacar-wheel-installer-")
    const release = join(dir, "release")
    const modules = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`pkg0/m${i}.py`, `X = ${i}\n`]))
    await writeRelease(release, [{ name: "pkg0", version: "1.0.0", modules }], ["pkg0==1.0.0"])
    const v = await venv(pythons.node, join(release, ".venv"))
    const lib = join(release, ".venv", "lib", `python${pythons.node.minor}`, "site-packages")
    // A folder where a file must go: pip would fail here too (it unlinks before writing).
    await mkdir(join(lib, "pkg0", "m7.py"), { recursive: true })
    const plan = await Effect.runPromise(planInstall(pythons.node, { cwd: release, env: v.env }))
    assert.equal(plan._tag, "Direct")
    const exit = await Effect.runPromiseExit(
      installWheels(v.python, plan._tag === "Direct" ? plan.wheels : [], { cwd: release, env: v.env })
    )
    assert.ok(Exit.isFailure(exit))
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")
    assert.ok(error?._tag === "Fail" && error.error._tag === "ProcessFailed")
    assert.equal(error.error.exitCode, 1)
    assert.match(error.error.tail, /m7\.py/)
  })

  test("a release of 300 pinned wheels is planned whole: the plan's one line is read to its end", async (t) => {
    const dir = await scratch(t, "sacar-wheel-installer-")
    const wheels = Array.from({ length: 300 }, (_, i) => ({
      name: `package-with-a-long-name-${i}`,
      version: "1.0.0",
      modules: { [`package_with_a_long_name_${i}/__init__.py`]: "" }
    }))
    await writeRelease(dir, wheels, wheels.map((w) => `${w.name}==${w.version}`))
    const plan = await Effect.runPromise(planInstall(pythons.node, { cwd: dir, env: pipEnvironment(dir, undefined) }))
    assert.equal(plan._tag === "Direct" ? plan.wheels.length : plan.why, 300)
  })

  test("an interpreter whose pip is not followed, and an entry point named like pip's own, are left to pip", async (t) => {
    const dir = await scratch(t, "sacar-wheel-installer-")
    await writeRelease(dir, [{ name: "pkg0", version: "1.0.0", modules: { "pkg0/__init__.py": "" } }], ["pkg0==1.0.0"])
    for (const pip of ["pip-25.0-py3-none-any.whl", "pip-22.0.4-py3-none-any.whl"]) {
      const other = { ...pythons.node, bundledPip: `/nowhere/ensurepip/_bundled/${pip}` }
      const plan = await Effect.runPromise(planInstall(other, { cwd: dir, env: pipEnvironment(dir, undefined) }))
      assert.deepEqual(plan, {
        _tag: "Pip",
        why: `the interpreter's pip (/nowhere/ensurepip/_bundled/${pip}) is not one Sacar follows`
      })
    }
    // As setuptools before 52 shipped it: pip names easy_install's scripts its own way.
    const release = join(dir, "easy")
    await writeRelease(release, [{
      name: "tools",
      version: "1.0",
      modules: {
        "tools/__init__.py": "def main():\n    return 0\n",
        "tools-1.0.dist-info/entry_points.txt": "[console_scripts]\neasy_install = tools:main\n"
      }
    }], ["tools==1.0"])
    const declined = await Effect.runPromise(
      planInstall(pythons.node, { cwd: release, env: pipEnvironment(release, undefined) })
    )
    assert.equal(declined._tag, "Pip")
    assert.match(declined._tag === "Pip" ? declined.why : "", /entry point easy_install/)
  })
})
