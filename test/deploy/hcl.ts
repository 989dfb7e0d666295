// Reads the HCL files under deploy/ as JSON (the shape @cdktf/hcl2json gives: every
// block is an array of bodies, labelled blocks are objects keyed by label).
import { parse } from "@cdktf/hcl2json"
import { readdir, readFile } from "node:fs/promises"
import { join, relative } from "node:path"

export const deployDir = join(import.meta.dirname, "..", "..", "deploy")

export type Body = Record<string, unknown>

export async function hclFiles(dir = deployDir): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...(await hclFiles(path)))
    else if (entry.name.endsWith(".hcl")) found.push(path)
  }
  return found.sort()
}

export async function parseHcl(path: string, content?: string): Promise<Body> {
  return (await parse(relative(deployDir, path), content ?? (await readFile(path, "utf8")))) as Body
}

/** The bodies of an unlabelled block, e.g. `blocks(task, "env")`. */
export function blocks(body: Body, name: string): Body[] {
  const v = body[name]
  return Array.isArray(v) ? (v as Body[]) : []
}

/** A labelled block's bodies by label, e.g. `labelled(job, "group")`. */
export function labelled(body: Body, name: string): Array<[string, Body]> {
  const v = body[name]
  if (v === undefined || v === null || typeof v !== "object" || Array.isArray(v)) return []
  return Object.entries(v as Record<string, Body[]>).flatMap(([label, bodies]) =>
    bodies.map((b): [string, Body] => [label, b])
  )
}

/** Every body of a block with this name at any depth (labelled or not). */
export function deepBlocks(body: unknown, name: string): Body[] {
  const out: Body[] = []
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit)
    if (node === null || typeof node !== "object") return
    for (const [k, v] of Object.entries(node as Body)) {
      if (k === name) {
        if (Array.isArray(v)) out.push(...(v as Body[]))
        else if (v !== null && typeof v === "object") out.push(...Object.values(v as Record<string, Body[]>).flat())
      }
      visit(v)
    }
  }
  visit(body)
  return out
}

/** The only job in a job file, with its name. */
export function theJob(file: Body): [string, Body] {
  const jobs = labelled(file, "job")
  if (jobs.length !== 1 || jobs[0] === undefined) throw new Error(`expected one job, found ${jobs.length}`)
  return jobs[0]
}

/** Nomad durations as used in job files ("30s", "6m", "1h"), in seconds. */
export function seconds(duration: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(duration)
  if (m === null) throw new Error(`unexpected duration ${duration}`)
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"]
}
