/**
 * Byte-compiling what pip installed, on every core. pip compiles each installed `.py`
 * file one after another, and that is the largest single cost of an install; so pip
 * runs with `--no-compile` and this script then does what pip would have done, in
 * parallel: `compileall.compile_file(path, force=True, quiet=True)` for each `.py` file
 * a RECORD lists, and a row `<pyc path>,,` per compiled file added to that RECORD,
 * rows sorted and written with the csv module as pip writes them (pip 23's
 * `operations/install/wheel.py`). The installed result is the same, byte for byte apart
 * from the times in bytecode headers; test/python/compile.test.ts compares the two.
 *
 * Most of that compilation is done ahead, while pip runs (precompileWheels): pip is
 * single-threaded and leaves a core idle, and what it installs is the wheels' files as
 * they are. So the `.py` files of the release's wheels are compiled beside pip, under
 * the path each will have once installed, into a cache of code objects keyed by that
 * path and the file's bytes. After pip, a file whose installed bytes and path match an
 * entry only needs its bytecode written: the header (magic, flags, the installed file's
 * mtime and size, as py_compile writes it) and the cached code; anything else (a file
 * the precompile did not reach, a changed one, another invalidation mode) is compiled
 * as before. The key holds the bytes, so a stale or partial cache can only cost time.
 */
import * as Effect from "effect/Effect"
import type { ProcessFailed, ProcessTimedOut } from "../process/run.ts"
import { runProcess } from "../process/run.ts"

// Shared by both scripts: where a file is cached. The path is the installed file's,
// as the writer names it: normpath(join(realpath(lib), RECORD path)).
const CACHE_KEY = String.raw`
import hashlib

def cache_key(path, data):
    return hashlib.sha256(path.encode("utf-8", "surrogateescape") + b"\0" + data).hexdigest()
`

const SCRIPT = String.raw`
import compileall, concurrent.futures, csv, importlib.util, json, multiprocessing, os, py_compile, sys, sysconfig, warnings
from importlib import _bootstrap_external as bootstrap
${CACHE_KEY}
CACHE = sys.argv[1] if len(sys.argv) > 1 else None

def compile_one(path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        return compileall.compile_file(path, force=True, quiet=True)

def from_cache(path):
    # What py_compile.compile(path) writes, with the code compiled ahead instead of now.
    with open(path, "rb") as f:
        data = f.read()
    try:
        with open(os.path.join(CACHE, cache_key(path, data)), "rb") as f:
            code = f.read()
    except OSError:
        return False
    cfile = importlib.util.cache_from_source(path)
    if os.path.islink(cfile) or (os.path.exists(cfile) and not os.path.isfile(cfile)):
        return False  # compile_one reports it, as pip would have
    st = os.stat(path)
    header = bootstrap.MAGIC_NUMBER + bootstrap._pack_uint32(0) + bootstrap._pack_uint32(st.st_mtime) + bootstrap._pack_uint32(st.st_size)
    os.makedirs(os.path.dirname(cfile), exist_ok=True)
    bootstrap._write_atomic(cfile, header + code, bootstrap._calc_mode(path))
    return True

def main():
    libs = sorted({os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")})
    records = []
    for lib in libs:
        for name in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
            record = os.path.join(lib, name, "RECORD")
            if name.endswith(".dist-info") and os.path.isfile(record):
                with open(record, newline="", encoding="utf-8") as f:
                    rows = [tuple(r) for r in csv.reader(f)]
                sources = sorted({os.path.normpath(os.path.join(lib, r[0])) for r in rows if r and r[0].endswith(".py")})
                records.append((lib, record, rows, [s for s in sources if os.path.isfile(s)]))
    todo = sorted({s for (_, _, _, sources) in records for s in sources})
    timestamps = py_compile._get_default_invalidation_mode() == py_compile.PycInvalidationMode.TIMESTAMP
    done = {}
    if CACHE is not None and timestamps and os.path.isdir(CACHE):
        done = {s: True for s in todo if from_cache(s)}
    cached = len(done)
    rest = [s for s in todo if s not in done]
    workers = min(os.cpu_count() or 1, max(1, len(rest) // 50))
    if workers > 1:
        # fork: the workers need compile_one, which lives in this -c script, not an importable module.
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done.update(zip(rest, pool.map(compile_one, rest, chunksize=16)))
    else:
        done.update({s: compile_one(s) for s in rest})
    for (lib, record, rows, sources) in records:
        added = [(os.path.relpath(importlib.util.cache_from_source(s), lib).replace(os.path.sep, "/"), "", "")
                 for s in sources if done.get(s)]
        if not added:
            continue
        with open(record, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(sorted(set(rows) | set(added)))
    print(json.dumps({"cached": cached, "compiled": len(rest)}))

main()
`

const PRECOMPILE = String.raw`
import marshal, os, re, sys, sysconfig, warnings, zipfile
${CACHE_KEY}
WHEELS, CACHE = sys.argv[1], sys.argv[2]

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def requested():
    try:
        with open("requirements.txt", encoding="utf-8", errors="replace") as f:
            return {canonical(m.group(0)) for m in (re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", l) for l in f) if m}
    except OSError:
        return set()

def sources(wheel, purelib, platlib):
    # The .py files pip puts in site-packages, with the path each gets there.
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        root = purelib
        for m in names:
            parts = m.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "WHEEL":
                if re.search(rb"(?mi)^Root-Is-Purelib:\s*false\s*$", z.read(m)):
                    root = platlib
        for m in names:
            parts = m.split("/")
            if not m.endswith(".py") or ".." in parts:
                continue
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers, data: not under site-packages
                path = os.path.join(purelib if parts[1] == "purelib" else platlib, *parts[2:])
            else:
                path = os.path.join(root, m)
            yield os.path.normpath(path), z.read(m)

def main():
    purelib = os.path.realpath(sysconfig.get_paths()["purelib"])
    platlib = os.path.realpath(sysconfig.get_paths()["platlib"])
    os.makedirs(CACHE, exist_ok=True)
    wanted = requested()
    wheels = sorted(n for n in os.listdir(WHEELS) if n.endswith(".whl"))
    # What requirements.txt names first: pip installs those; the others only maybe.
    wheels.sort(key=lambda n: canonical(n.split("-")[0]) not in wanted)
    for name in wheels:
        try:
            for path, data in sources(os.path.join(WHEELS, name), purelib, platlib):
                try:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore")
                        code = compile(data, path, "exec", dont_inherit=True)
                except Exception:
                    continue  # compile_one meets it again after pip, and reports it as pip would
                key = cache_key(path, data)
                temp = os.path.join(CACHE, key + ".%d.tmp" % os.getpid())
                with open(temp, "wb") as f:
                    f.write(marshal.dumps(code))
                os.replace(temp, os.path.join(CACHE, key))
        except (OSError, zipfile.BadZipFile):
            continue  # not a wheel pip can install either; pip reports it

main()
`

/** How the two scripts run: with the venv's Python, in the release, as the app's user. */
interface InVenv {
  readonly venvPython: string
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  /** Whom to run as (SACAR_RUN_AS); the reconciler's own user when undefined. */
  readonly user?: { readonly uid: number; readonly gid: number } | undefined
  readonly timeoutMs?: number
  readonly onSpawn?: (pid: number) => void
}

const runScript = (options: InVenv, script: string, args: ReadonlyArray<string>) =>
  runProcess({
    command: options.venvPython,
    args: ["-I", "-c", script, ...args],
    cwd: options.cwd,
    env: options.env,
    user: options.user,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.onSpawn === undefined ? {} : { onSpawn: options.onSpawn })
  })

/**
 * Compile the `.py` files of the wheels in `wheels` (relative to `cwd`) into `cache`,
 * under the paths they get once pip installs them into the venv of `venvPython`. Meant
 * to run beside pip and to be interrupted when pip is done: each entry appears whole,
 * by a rename.
 */
export const precompileWheels = (
  options: InVenv & { readonly wheels: string; readonly cache: string }
): Effect.Effect<void, ProcessFailed | ProcessTimedOut> =>
  runScript(options, PRECOMPILE, [options.wheels, options.cache]).pipe(Effect.asVoid)

export interface Compiled {
  /** Files whose bytecode came from the cache. */
  readonly cached: number
  /** Files compiled here. */
  readonly compiled: number
}

/**
 * Compile the `.py` files the venv's RECORDs list, as pip would have, with `venvPython`,
 * taking what `cache` (from precompileWheels) holds for them.
 */
export const compileInstalled = (
  options: InVenv & { readonly cache?: string | undefined }
): Effect.Effect<Compiled, ProcessFailed | ProcessTimedOut> =>
  runScript(options, SCRIPT, options.cache === undefined ? [] : [options.cache]).pipe(
    Effect.map(({ tail }) => {
      const line = tail.split("\n").reverse().find((l) => l.startsWith("{\"cached\""))
      return line === undefined ? { cached: 0, compiled: 0 } : JSON.parse(line) as Compiled
    })
  )
