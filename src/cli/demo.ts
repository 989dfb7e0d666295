/**
 * `sacar demo`: everything on one machine, one release walked to live. The work is in
 * src/demo/ (run.ts owns the processes and the exit code, walkthrough.ts is the script).
 */
import { parseDemoArgs } from "../demo/options.ts"
import { runDemo } from "../demo/run.ts"
import { withUsage } from "./args.ts"

export async function main(argv: string[]): Promise<number> {
  return withUsage("demo", async () => {
    const options = parseDemoArgs(argv, process.cwd())
    if (options === undefined) return 0
    return runDemo(options, { env: process.env, cwd: process.cwd(), out: process.stdout, err: process.stderr })
  })
}
