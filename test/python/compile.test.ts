/**
 * pip with `--no-compile` followed by compileInstalled must leave what pip with its own
 * byte-compilation leaves: the same files, the same RECORDs, the same bytecode, whether
 * compileInstalled compiles everything itself or takes what precompileWheels compiled
 * from the wheels beside pip.
 */
import * as Effect from "effect/Effect"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, test } from "node:test"
import { promisify } from "node:util"
import { compileInstalled, precompileWheels } from "../../src/python/compile.ts"
import { PIP_ARGS } from "../../src/python/pip.ts"
import { makePython } from "../../src/python/python.ts"
import { pipEnvironment } from "../../src/reconciler/steps/environment.ts"
import { PIP_CACHE, scratch } from "../reconciler/steps/harness.ts"
import { buildReleaseTarball, smallWheels } from "../support/tarballs.ts"
import { contents } from "../support/venv-contents.ts"

const exec = promisify(execFile)

/**
 * A release with wheels whose `.py` files number over 100 (so compileInstalled compiles
 * in a pool of processes), and two empty venvs at paths of one length, so files naming
 * them compare byte for byte: `byPip` installed by pip with its own byte-compilation,
 * `bySacar` by pip with `--no-compile`, to be compiled by the test.
 */
const setUp = async (t: { after: (f: () => Promise<void>) => void }) => {
  const dir = await scratch(t)
  await buildReleaseTarball(join(dir, "app.tgz"), {
    wheels: [...smallWheels(6), {
      name: "many",
      version: "1.0",
      modules: Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`many/m${i}.py`, `X = ${i}\n`]))
    }, {
      name: "tool",
      version: "1.0",
      modules: {
        "tool/__init__.py": "def main():\n    return 0\n",
        "tool/sub/deep.py": "X = 'deep'\n",
        "tool/data.txt": "not python\n",
        "tool-1.0.dist-info/entry_points.txt": "[console_scripts]\ntool = tool:main\n"
      }
    }]
  })
  await exec("tar", ["xzf", join(dir, "app.tgz"), "-C", dir])
  const python = makePython(process.env.PATH ?? "")
  const interpreter = await Effect.runPromise(python.resolve({ fallback: "python3" }))
  const pip = join(await Effect.runPromise(python.pip(interpreter, PIP_CACHE)), "pip")
  const [byPip, bySacar] = [join(dir, "a", ".venv"), join(dir, "b", ".venv")]
  for (const venv of [byPip, bySacar]) await exec(interpreter.path, ["-I", "-m", "venv", "--without-pip", venv])
  const pipArgs = PIP_ARGS.filter((a) => a !== "--no-compile")
  await exec(join(byPip, "bin", "python"), [pip, ...pipArgs], { cwd: dir, env: pipEnvironment(byPip, undefined) })
  const inSacar = { venvPython: join(bySacar, "bin", "python"), cwd: dir, env: pipEnvironment(bySacar, undefined) }
  const installBySacar = () => exec(inSacar.venvPython, [pip, ...PIP_ARGS], { cwd: dir, env: inSacar.env })
  return { dir, interpreter, byPip, bySacar, inSacar, installBySacar }
}

const assertSameAsPip = async (byPip: string, bySacar: string, minor: string) => {
  const [expected, actual] = [await contents(byPip), await contents(bySacar)]
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort())
  for (const [path, body] of expected) assert.equal(actual.get(path), body, path)
  assert.ok([...expected.keys()].some((p) => p.endsWith("deep.cpython-" + minor.replace(".", "") + ".pyc")))
  assert.ok([...expected.keys()].some((p) => p.endsWith("tool-1.0.dist-info/RECORD")))
  return [...expected.keys()].filter((p) => p.endsWith(".pyc")).length
}

describe("byte-compiling after pip", () => {
  test("pip --no-compile then compileInstalled gives what pip's own compilation gives", async (t) => {
    const { interpreter, byPip, bySacar, inSacar, installBySacar } = await setUp(t)
    await installBySacar()
    const compiled = await Effect.runPromise(compileInstalled(inSacar))
    const pycs = await assertSameAsPip(byPip, bySacar, interpreter.minor)
    assert.deepEqual(compiled, { cached: 0, compiled: pycs })
  })

  test("with the wheels compiled ahead, every file's bytecode comes from the cache and is what pip's own compilation gives", async (t) => {
    const { dir, interpreter, byPip, bySacar, inSacar, installBySacar } = await setUp(t)
    const cache = join(dir, "bytecode")
    await Promise.all([
      installBySacar(),
      Effect.runPromise(precompileWheels({ ...inSacar, wheels: "wheels", cache }))
    ])
    const compiled = await Effect.runPromise(compileInstalled({ ...inSacar, cache }))
    const pycs = await assertSameAsPip(byPip, bySacar, interpreter.minor)
    assert.deepEqual(compiled, { cached: pycs, compiled: 0 })
  })

  test("an installed file whose bytes differ from its wheel's is compiled from what is installed", async (t) => {
    const { dir, inSacar, installBySacar, bySacar } = await setUp(t)
    const cache = join(dir, "bytecode")
    await installBySacar()
    await Effect.runPromise(precompileWheels({ ...inSacar, wheels: "wheels", cache }))
    const lib =
      (await exec(inSacar.venvPython, ["-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]))
        .stdout.trim()
    await writeFile(join(lib, "tool", "sub", "deep.py"), "X = 'changed'\n")
    const compiled = await Effect.runPromise(compileInstalled({ ...inSacar, cache }))
    assert.equal(compiled.compiled, 1)
    assert.ok(compiled.cached > 150)
    // The constants of the code in the written .pyc: the changed source's, not the wheel's.
    const { stdout } = await exec(inSacar.venvPython, [
      "-I",
      "-c",
      "import importlib.util, marshal, sys; f = open(importlib.util.cache_from_source(sys.argv[1]), 'rb'); f.read(16); print(marshal.load(f).co_consts)",
      join(lib, "tool", "sub", "deep.py")
    ], { env: pipEnvironment(bySacar, undefined) })
    assert.match(stdout, /'changed'/)
  })
})
