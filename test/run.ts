/**
 * The whole suite: every `*.test.ts` file below test/, under node's test runner, files
 * run concurrently (most end-to-end tests wait on child processes and Consul, not
 * on the CPU). With CONSUL_HTTP_ADDR set, every Consul-touching test runs against
 * that Consul instead of an embedded dev-consul.
 */
import { globSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { run } from "node:test"
import { spec } from "node:test/reporters"

/**
 * The files that take longest (each run alone on a busy 2-core machine), longest first.
 * node's runner starts files in the order given; the suite ends when its last file does,
 * so a long file started late would run on alone after everything else has finished.
 * Started first, the short files fill the gaps beside them. Matched by the end of the
 * path, so a file moved to another folder only loses its place in the queue.
 * The first two take two minutes of waiting on Consul's session TTLs and the report
 * loop's pacing, and almost no CPU: begun at once, they finish beside the others.
 */
const LONGEST_FIRST = [
  "controller/report-loop.test.ts",
  "consul/production.test.ts",
  "reconciler/lifecycle.test.ts",
  "docs/commands.test.ts",
  "reconciler/deploy.test.ts",
  "reconciler/steps/reuse.test.ts",
  "python/wheel-installer.test.ts",
  "demo/demo.test.ts",
  "bounded.test.ts",
  "real-failures.test.ts",
  "pack/pack.test.ts",
  "bundle/dist.test.ts"
]

const rank = (file: string): number => {
  const i = LONGEST_FIRST.findIndex((suffix) => file === suffix || file.endsWith(`/${suffix}`))
  return i === -1 ? LONGEST_FIRST.length : i
}

const given = process.argv.slice(2)
const files = (given.length > 0 ? given : globSync("test/**/*.test.ts").sort())
  .map((file, i) => ({ file, i }))
  .sort((a, b) => rank(a.file) - rank(b.file) || a.i - b.i)
  .map(({ file }) => resolve(file))
const concurrency = Number(process.env.SACAR_TEST_CONCURRENCY ?? Math.max(4, availableParallelism() * 3))
// Each test file is a Node process loading effect and much of src/: with V8's compile
// cache (the directory bin/sacar.ts's enableCompileCache() uses) each starts about a
// third of a CPU-second cheaper.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), "node-compile-cache")

// node:test's run() rather than `node --test <files>`: the command line sorts the files
// by name, and run() starts them in the order given.
const interrupted = new AbortController()
const stream = run({ files, concurrency, timeout: 240_000, signal: interrupted.signal })
stream.on("test:summary", (summary) => {
  // The last summary (no file) is the whole run's.
  if (summary.file === undefined && !summary.success) process.exitCode = 1
})
stream.compose(spec).pipe(process.stdout)
const stop = () => interrupted.abort()
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
