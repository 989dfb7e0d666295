import { Effect } from "effect"
import { makePython } from "../src/python/python.ts"
const py = makePython(process.env.PATH ?? "")
console.log(await Effect.runPromise(py.resolve({ fallback: "python3" })))
console.log(await Effect.runPromise(Effect.result(py.resolve({ version: "3.12", fallback: "python3" }))))
console.log(await Effect.runPromise(Effect.result(py.resolve({ version: "3.99", fallback: "python3" }))))
console.log(await Effect.runPromise(py.listVersions("python3")))
const i = await Effect.runPromise(py.resolve({ version: "3.11", fallback: "python3" }))
console.log(await Effect.runPromise(py.pip(i, "/tmp/pipcache")))
