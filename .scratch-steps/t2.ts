import { writeFile, mkdir } from "node:fs/promises"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Cause } from "effect"
import { rawTarball } from "../test/support/tarballs.ts"
import { input, run } from "../test/steps/helpers.ts"
const dir = "/tmp/t2"; await mkdir(dir, { recursive: true })
const many = join(dir, "many.tgz")
await writeFile(many, rawTarball(Array.from({ length: 20 }, (_, i) => ({ path: `./f${i}`, content: "x" }))))
const r = await run(input(join(dir, "a"+Date.now()), pathToFileURL(many).href, { extractLimits: { maxEntries: 10, maxBytes: 1e9 } }))
if (r.exit._tag === "Failure") console.log(Cause.pretty(r.exit.cause))
