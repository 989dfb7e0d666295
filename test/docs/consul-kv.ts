/**
 * The part of the `consul` CLI the docs use (`consul kv put|get|delete`), over the HTTP
 * API at CONSUL_HTTP_ADDR: the docs test puts it on PATH as `consul`, since a Consul
 * binary is not installed here. Anything else exits 127, so a doc command it cannot
 * run fails loudly instead of passing.
 */
import { Kv } from "../support/kv.ts"

const [group, verb, key, value] = process.argv.slice(2)
const base = (process.env.CONSUL_HTTP_ADDR ?? "http://127.0.0.1:8500").replace(/\/+$/, "")
const addr = /^[a-z]+:\/\//.test(base) ? base : `http://${base}`
if (group !== "kv" || key === undefined) {
  process.stderr.write(`consul ${process.argv.slice(2).join(" ")}: not supported by the docs test's consul shim\n`)
  process.exit(127)
}
const kv = new Kv(addr)
if (verb === "put") {
  if (!(await kv.put(key, value ?? ""))) process.exit(1)
  process.stdout.write(`Success! Data written to: ${key}\n`)
} else if (verb === "get") {
  const text = await kv.text(key)
  if (text === undefined) {
    process.stderr.write(`Error! No key exists at: ${key}\n`)
    process.exit(1)
  }
  process.stdout.write(`${text}\n`)
} else if (verb === "delete") {
  await kv.delete(key)
  process.stdout.write(`Success! Deleted key: ${key}\n`)
} else {
  process.stderr.write(`consul kv ${verb}: not supported by the docs test's consul shim\n`)
  process.exit(127)
}
