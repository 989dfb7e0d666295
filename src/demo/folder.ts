/**
 * The demo folder: everything one run writes, so that one `rm -rf` (the next run's
 * wipe) removes it all. A marker file says the folder is the demo's: a folder without
 * it is only used when empty, so `--dir ~/src` cannot wipe someone's work.
 */
import { readFileSync } from "node:fs"
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { isAlive } from "../process/alive.ts"
import { killLeftovers } from "./leftovers.ts"

export const DEMO_NODES = ["demo-1", "demo-2", "demo-3"] as const

const MARKER = ".sacar-demo"
/** The running demo's own pid: a second run in the folder refuses instead of killing it. */
const PID_FILE = "demo.pid"
/** The Consul the run used, so the next run can tell a dead CONSUL_HTTP_ADDR is an earlier demo's. */
export const CONSUL_ADDRESS_FILE = "consul-address"

export interface DemoFolder {
  readonly dir: string
  readonly artifacts: string
  readonly logs: string
  /** The file listing every child's pid, read by the next run to kill leftovers. */
  readonly pids: string
  readonly nodeRoot: (node: string) => string
  /** The pip every node's `.sacar/pip` links to (shared-pip.ts). */
  readonly pip: string
  readonly log: (name: string) => string
  readonly consulAddress: string
}

export const demoFolder = (dir: string): DemoFolder => ({
  dir,
  artifacts: join(dir, "artifacts"),
  logs: join(dir, "logs"),
  pids: join(dir, "pids"),
  nodeRoot: (node) => join(dir, "nodes", node),
  pip: join(dir, "pip"),
  log: (name) => join(dir, "logs", `${name}.log`),
  consulAddress: join(dir, CONSUL_ADDRESS_FILE)
})

/** The folder holds something the demo did not write: refusing is the only safe answer. */
export class FolderRefused extends Error {}

const entries = async (dir: string): Promise<string[] | undefined> => {
  try {
    return await readdir(dir)
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw cause
  }
}

/** The pid of a `sacar demo` still running out of the folder, if there is one (Linux: /proc). */
const runningDemo = async (dir: string): Promise<number | undefined> => {
  const pid = Number((await readFile(join(dir, PID_FILE), "utf8").catch(() => "")).trim())
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !isAlive(pid)) return undefined
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
    return args.includes("demo") ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * Wipes and lays out the folder. Processes a previous run left behind (a demo killed
 * with SIGKILL cannot clean up) are stopped first, so they do not write into the new run.
 */
export async function prepareFolder(folder: DemoFolder): Promise<{ leftovers: number }> {
  const existing = await entries(folder.dir)
  let leftovers = 0
  if (existing !== undefined && existing.length > 0) {
    if (!existing.includes(MARKER)) {
      throw new FolderRefused(
        `${folder.dir} is not empty and was not made by sacar demo; pick another --dir or empty it`
      )
    }
    const running = await runningDemo(folder.dir)
    if (running !== undefined) {
      throw new FolderRefused(
        `a demo is already running in ${folder.dir} (pid ${running}); stop it first (Ctrl-C in its terminal, or kill ${running}), or give this one another --dir`
      )
    }
    const pids = await readFile(folder.pids, "utf8").catch(() => "")
    leftovers = await killLeftovers(pids, folder.dir)
  }
  await rm(folder.dir, { recursive: true, force: true })
  await mkdir(folder.artifacts, { recursive: true })
  await mkdir(folder.logs, { recursive: true })
  for (const node of DEMO_NODES) await mkdir(folder.nodeRoot(node), { recursive: true })
  await writeFile(
    join(folder.dir, MARKER),
    // Plain async setup before any Effect runs; a note for a person browsing the folder.
    `made by sacar demo at ${new Date().toISOString()}; wiped by the next run\n`
  )
  await writeFile(folder.pids, "")
  await writeFile(join(folder.dir, PID_FILE), `${process.pid}\n`)
  return { leftovers }
}
