// `sacar pack [DIR] -o app.tgz`: build the release tarball of a Python project.
import { parseArgs } from "node:util"
import { type PackError } from "../pack/errors.ts"
import { pack } from "../pack/pack.ts"
import { PYTHON_VERSION } from "../pack/python.ts"

const HELP = `Usage: sacar pack [DIR] -o app.tgz [--find-links DIR]... [--no-index] [--python-version X.Y]

Builds the release tarball Sacar installs on every node: the project's files (without
.git, .venv, __pycache__ and *.pyc), wheels/ with every wheel requirements.txt needs
(pip wheel), and python-version. The same inputs give the same bytes; the sha256 and
size are printed on stdout.

DIR defaults to the current directory and must hold bin/deploy and requirements.txt.
A wheels/ directory in DIR is used as a source of wheels and replaced by the resolved set.

Options:
  -o, --output FILE        where to write the tarball (required)
  --find-links DIR         also look for wheels in DIR (repeatable)
  --no-index               do not use any package index (offline builds)
  --python-version X.Y     build with pythonX.Y and record X.Y in python-version
                           (default: the project's python-version, else python3)
  -h, --help               show this help

Environment: SOURCE_DATE_EPOCH sets the entries' mtime (default 0). pip reads no
configuration file; only its index settings (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
PIP_TRUSTED_HOST, PIP_CERT, ...) are taken from the environment.

Examples:
  sacar pack . -o app.tgz
  sacar pack examples/shop -o /tmp/shop.tgz --no-index --find-links examples/shop/wheels
  sacar pack . -o app.tgz --python-version 3.12
`

interface Io {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly env: NodeJS.ProcessEnv
}

const processIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        output: { type: "string", short: "o" },
        "find-links": { type: "string", multiple: true },
        "no-index": { type: "boolean" },
        "python-version": { type: "string" },
        help: { type: "boolean", short: "h" }
      }
    })
  } catch (e) {
    return usage(io, (e as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.stdout(HELP)
    return 0
  }
  if (positionals.length > 1) return usage(io, `expected at most one project directory, got ${positionals.join(" ")}`)
  if (values.output === undefined || values.output === "")
    return usage(io, "missing -o FILE (where to write the tarball)")
  const pythonVersion = values["python-version"]
  if (pythonVersion !== undefined && !PYTHON_VERSION.test(pythonVersion)) {
    return usage(io, `--python-version takes major.minor such as 3.11, got ${JSON.stringify(pythonVersion)}`)
  }
  try {
    const packed = await pack({
      dir: positionals[0] ?? ".",
      out: values.output,
      findLinks: values["find-links"] ?? [],
      noIndex: values["no-index"] ?? false,
      pythonVersion,
      env: io.env,
      log: (line) => io.stderr(`sacar pack: ${line}\n`)
    })
    io.stdout(`${packed.path}\nsha256 ${packed.sha256}\nsize ${packed.size}\n`)
    return 0
  } catch (e) {
    if (isPackError(e)) {
      io.stderr(`sacar pack: ${e.message}\n`)
      return e._tag === "BadSetting" ? 2 : 1
    }
    io.stderr(`sacar pack: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
}

function usage(io: Io, problem: string): number {
  io.stderr(`sacar pack: ${problem}\nRun 'sacar pack --help' for usage.\n`)
  return 2
}

function isPackError(e: unknown): e is PackError {
  const tag = (e as { _tag?: unknown } | null)?._tag
  return tag === "ProjectInvalid" || tag === "BuildPythonUnavailable" || tag === "WheelBuildFailed" ||
    tag === "BadSetting"
}
