/**
 * The part of the `consul` CLI the docs use (`consul kv put|get|delete`), over the HTTP
 * API at CONSUL_HTTP_ADDR: the docs test puts it on PATH as `consul`, since a Consul
 * binary is not installed here. Anything else exits 127, so a doc command it cannot
 * run fails loudly instead of passing.
 */
const [group, verb, key, value] = process.argv.slice(2)
const base = (process.env.CONSUL_HTTP_ADDR ?? "http://127.0.0.1:8500").replace(/\/+$/, "")
const addr = /^[a-z]+:\/\//.test(base) ? base : `http://${base}`
if (group !== "kv" || key === undefined) {
  process.stderr.write(`consul ${process.argv.slice(2).join(" ")}: not supported by the docs test's consul shim\n`)
  process.exit(127)
}
const url = `${addr}/v1/kv/${key}`
if (verb === "put") {
  const res = await fetch(url, { method: "PUT", body: value ?? "" })
  if (!res.ok || (await res.text()).trim() !== "true") process.exit(1)
  process.stdout.write(`Success! Data written to: ${key}\n`)
} else if (verb === "get") {
  const res = await fetch(`${url}?raw`)
  if (res.status === 404) {
    process.stderr.write(`Error! No key exists at: ${key}\n`)
    process.exit(1)
  }
  process.stdout.write(`${await res.text()}\n`)
} else if (verb === "delete") {
  const res = await fetch(url, { method: "DELETE" })
  if (!res.ok) process.exit(1)
  process.stdout.write(`Success! Deleted key: ${key}\n`)
} else {
  process.stderr.write(`consul kv ${verb}: not supported by the docs test's consul shim\n`)
  process.exit(127)
}
