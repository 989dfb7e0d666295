/**
 * The whole suite: every `*.test.ts` file below test/, under node's test runner, files
 * run concurrently (most end-to-end tests wait on child processes and Consul, not
 * on the CPU). With CONSUL_HTTP_ADDR set, every Consul-touching test runs against
 * that Consul instead of an embedded dev-consul.
 */
import { spawn } from "node:child_process"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"

const files = process.argv.slice(2)
const concurrency = Number(process.env.SACAR_TEST_CONCURRENCY ?? Math.max(4, availableParallelism() * 3))
const args = [
  "--test",
  `--test-concurrency=${concurrency}`,
  "--test-timeout=240000",
  `--test-reporter=spec`,
  ...(files.length > 0 ? files : ["test/**/*.test.ts"])
]
// Each test file is a Node process loading effect and much of src/: with V8's compile
// cache (the directory bin/sacar.ts's enableCompileCache() uses) each starts about a
// third of a CPU-second cheaper.
const env = { NODE_COMPILE_CACHE: join(tmpdir(), "node-compile-cache"), ...process.env }
const child = spawn(process.execPath, args, { stdio: "inherit", env })
const forward = (signal: NodeJS.Signals) => child.kill(signal)
process.on("SIGINT", forward)
process.on("SIGTERM", forward)
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
