/**
 * Every benchmark, one after another (they measure time, so never concurrently):
 * each prints its own table and ratio and appends its figures to docs/benchmarks.md.
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const BENCHES = ["consul-watch.ts", "prepare.ts", "github-requests.ts", "scale.ts", "latency.ts", "memory.ts"]
let failed = 0
for (const bench of BENCHES) {
  process.stdout.write(`\n== ${bench}\n`)
  const result = spawnSync(
    process.execPath,
    [fileURLToPath(new URL(bench, import.meta.url)), ...process.argv.slice(2)],
    { stdio: "inherit" }
  )
  if (result.status !== 0) failed += 1
}
process.exit(failed === 0 ? 0 : 1)
