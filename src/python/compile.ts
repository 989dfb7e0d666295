/**
 * Byte-compiling what pip installed, on every core. pip compiles each installed `.py`
 * file one after another, and that is the largest single cost of an install; so pip
 * runs with `--no-compile` and this script then does what pip would have done, in
 * parallel: `compileall.compile_file(path, force=True, quiet=True)` for each `.py` file
 * a RECORD lists, and a row `<pyc path>,,` per compiled file added to that RECORD,
 * rows sorted and written with the csv module as pip writes them (pip 23's
 * `operations/install/wheel.py`). The installed result is the same, byte for byte apart
 * from the times in bytecode headers; test/python/compile.test.ts compares the two.
 */
import * as Effect from "effect/Effect"
import type { ProcessFailed, ProcessTimedOut } from "../process/run.ts"
import { runProcess } from "../process/run.ts"

const SCRIPT = String.raw`
import compileall, concurrent.futures, csv, importlib.util, multiprocessing, os, sys, sysconfig, warnings

def compile_one(path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        return compileall.compile_file(path, force=True, quiet=True)

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
    workers = min(os.cpu_count() or 1, max(1, len(todo) // 50))
    if workers > 1:
        # fork: the workers need compile_one, which lives in this -c script, not an importable module.
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = dict(zip(todo, pool.map(compile_one, todo, chunksize=16)))
    else:
        done = {s: compile_one(s) for s in todo}
    for (lib, record, rows, sources) in records:
        added = [(os.path.relpath(importlib.util.cache_from_source(s), lib).replace(os.path.sep, "/"), "", "")
                 for s in sources if done.get(s)]
        if not added:
            continue
        with open(record, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(sorted(set(rows) | set(added)))

main()
`

/** Compile the `.py` files the venv's RECORDs list, as pip would have, with `venvPython`. */
export const compileInstalled = (options: {
  readonly venvPython: string
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  /** Whom to run as (SACAR_RUN_AS); the reconciler's own user when undefined. */
  readonly user?: { readonly uid: number; readonly gid: number } | undefined
  readonly timeoutMs?: number
  readonly onSpawn?: (pid: number) => void
}): Effect.Effect<void, ProcessFailed | ProcessTimedOut> =>
  runProcess({
    command: options.venvPython,
    args: ["-I", "-c", SCRIPT],
    cwd: options.cwd,
    env: options.env,
    user: options.user,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.onSpawn === undefined ? {} : { onSpawn: options.onSpawn })
  }).pipe(Effect.asVoid)
