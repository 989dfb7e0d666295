import assert from "node:assert/strict"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { test } from "node:test"
import { distTop } from "../../src/bundle/entries.ts"
import { blocks, type Body, deepBlocks, deployDir, hclFiles, labelled, parseHcl, seconds, theJob } from "./hcl.ts"

const controllerFile = join(deployDir, "sacar-controller.nomad.hcl")
const reconcilerFile = join(deployDir, "sacar-reconciler.nomad.hcl")
const SECRET_NAME = /TOKEN|SECRET|KEY|PASSWORD|CREDENTIAL/

test("every .hcl file under deploy/ parses", async () => {
  const files = await hclFiles()
  assert.ok(files.includes(controllerFile) && files.includes(reconcilerFile), files.join(", "))
  for (const f of files) assert.equal(typeof (await parseHcl(f)), "object", f)
})

test("controller: a service job with two allocations, a port and health checks", async () => {
  const [name, job] = theJob(await parseHcl(controllerFile))
  assert.equal(name, "sacar-controller")
  assert.equal(job.type, "service")
  const groups = labelled(job, "group")
  assert.equal(groups.length, 1)
  const [, group] = groups[0] as [string, Body]
  assert.equal(group.count, 2)
  const ports = blocks(group, "network").flatMap((n) => labelled(n, "port").map(([label]) => label))
  assert.deepEqual(ports, ["http"])

  const services = blocks(group, "service")
  assert.equal(services.length, 1)
  const service = services[0] as Body
  assert.equal(service.port, "http")
  const checks = blocks(service, "check")
  const paths = checks.map((c) => c.path)
  assert.ok(paths.includes("/healthz"), `checks: ${paths.join(", ")}`)
  assert.ok(paths.includes("/readyz"), `checks: ${paths.join(", ")}`)
  for (const c of checks) assert.equal(c.type, "http")

  const update = [...blocks(job, "update"), ...blocks(group, "update")]
  assert.ok(update.length > 0, "an update block")
  assert.ok(update.every((u) => u.max_parallel === 1), "rolling one replica at a time keeps one serving")

  const tasks = labelled(group, "task")
  assert.equal(tasks.length, 1)
  const [, task] = tasks[0] as [string, Body]
  const resources = blocks(task, "resources")[0]
  assert.ok(resources !== undefined && typeof resources.cpu === "number" && typeof resources.memory === "number")
  const env = Object.assign({}, ...blocks(task, "env")) as Record<string, string>
  assert.match(env.SACAR_LISTEN ?? "", /NOMAD_(ADDR|PORT)_http/)
})

test("reconciler: a system job with no port and no service to connect to", async () => {
  const parsed = await parseHcl(reconcilerFile)
  const [name, job] = theJob(parsed)
  assert.equal(name, "sacar-reconciler")
  assert.equal(job.type, "system")
  assert.deepEqual(deepBlocks(parsed, "network"), [], "no network block anywhere")
  assert.deepEqual(deepBlocks(parsed, "port"), [], "no port anywhere")
  assert.deepEqual(deepBlocks(parsed, "service"), [], "no service registration")

  const tasks = labelled(job, "group").flatMap(([, g]) => labelled(g, "task"))
  assert.equal(tasks.length, 1)
  const [, task] = tasks[0] as [string, Body]
  assert.equal(task.kill_signal, "SIGTERM")
  assert.ok(
    seconds(String(task.kill_timeout)) >= 5 * 60,
    "long enough for a bin/deploy under the default 5m deployTimeout"
  )
  const env = Object.assign({}, ...blocks(task, "env")) as Record<string, string>
  assert.equal(env.SACAR_NODE, "${node.unique.name}")
  assert.equal(env.SACAR_ROOT, "/var/lib/sacar")
  // the node's own Consul token, chosen by node name from the job's variable
  const tokenTemplate = blocks(task, "template").find((t) => t.destination === env.CONSUL_HTTP_TOKEN_FILE)
  assert.ok(tokenTemplate !== undefined, "a template renders the token file")
  assert.match(String(tokenTemplate.data), /nomadVar "nomad\/jobs\/sacar-reconciler"/)
  assert.match(String(tokenTemplate.data), /env "node\.unique\.name"/)
})

/**
 * Where a job file leaks a secret: a secret-looking env name that is not the *_FILE
 * form, a file outside the task's secrets directory, or one no template fills from the
 * job's own Nomad variable.
 */
function secretProblems(jobName: string, job: Body): string[] {
  const problems: string[] = []
  const inSecrets = /^(\$\{NOMAD_SECRETS_DIR\}\/|secrets\/)/
  for (const [taskName, task] of labelled(job, "group").flatMap(([, g]) => labelled(g, "task"))) {
    const templates = blocks(task, "template")
    for (const env of blocks(task, "env")) {
      for (const [k, v] of Object.entries(env)) {
        if (!SECRET_NAME.test(k)) continue
        if (!k.endsWith("_FILE")) {
          problems.push(`${taskName}: ${k} holds a secret in plain env`)
          continue
        }
        if (!inSecrets.test(String(v))) problems.push(`${taskName}: ${k}=${v} is outside secrets/`)
        const t = templates.find((t) => t.destination === v)
        if (t === undefined) problems.push(`${taskName}: no template writes ${v}`)
        else {
          if (!String(t.data).includes(`nomadVar "nomad/jobs/${jobName}"`))
            problems.push(`${v} not from nomad/jobs/${jobName}`)
          if (t.perms !== "0400") problems.push(`${v} has perms ${String(t.perms)}, not 0400`)
        }
      }
    }
    for (const t of templates) {
      if (!inSecrets.test(String(t.destination)))
        problems.push(`${taskName}: template renders into ${String(t.destination)}`)
    }
  }
  return problems
}

for (const file of [controllerFile, reconcilerFile]) {
  test(`${file.split("/").pop()}: no secret in a plain env block; secrets come from Nomad variables`, async () => {
    const [jobName, job] = theJob(await parseHcl(file))
    assert.deepEqual(secretProblems(jobName, job), [])
  })
}

test("the secret check catches a token written into env", async () => {
  const text = await readFile(controllerFile, "utf8")
  const leaky = text.replace("env {\n", "env {\n        GITHUB_WEBHOOK_SECRET = \"hunter2\"\n")
  assert.notEqual(leaky, text)
  const [jobName, job] = theJob(await parseHcl(controllerFile, leaky))
  assert.deepEqual(secretProblems(jobName, job), ["controller: GITHUB_WEBHOOK_SECRET holds a secret in plain env"])
  const elsewhere = text.replace(
    "SACAR_NOTIFY_TOKEN_FILE     = \"${NOMAD_SECRETS_DIR}/notify-token\"",
    "SACAR_NOTIFY_TOKEN_FILE = \"/etc/notify-token\""
  )
  assert.notEqual(elsewhere, text)
  const problems = secretProblems(...theJob(await parseHcl(controllerFile, elsewhere)))
  assert.ok(problems.some((p) => p.includes("/etc/notify-token is outside secrets/")), problems.join("; "))
})

/** What a job file does to get Sacar itself: problems, none when it fetches the dist tarball checked by sha256. */
function artifactProblems(file: Body, version: string): string[] {
  const problems: string[] = []
  const [, job] = theJob(file)
  const variables = Object.fromEntries(labelled(file, "variable"))
  if (variables.sacar_version?.default !== version)
    problems.push(`variable sacar_version defaults to ${String(variables.sacar_version?.default)}, not ${version}`)
  if (variables.sacar_url === undefined || "default" in variables.sacar_url)
    problems.push("sacar_url must be a variable without a default (where the operator uploaded the tarball)")
  const condition = blocks(variables.sacar_sha256 ?? {}, "validation")[0]?.condition
  if (typeof condition !== "string" || !condition.includes("^[0-9a-f]{64}$"))
    problems.push("sacar_sha256 must be validated as 64 hex characters")
  if (blocks(job, "meta")[0]?.sacar_version !== "${var.sacar_version}")
    problems.push("meta.sacar_version must follow the variable, so a new version rolls the job")
  for (const [taskName, task] of labelled(job, "group").flatMap(([, g]) => labelled(g, "task"))) {
    const artifacts = blocks(task, "artifact")
    if (artifacts.length !== 1) {
      problems.push(`${taskName}: ${artifacts.length} artifact stanzas, not 1`)
      continue
    }
    const artifact = artifacts[0]!
    if (artifact.source !== "${var.sacar_url}") problems.push(`${taskName}: artifact source ${String(artifact.source)}`)
    if (artifact.destination !== "local") problems.push(`${taskName}: unpacked into ${String(artifact.destination)}`)
    const checksum = blocks(artifact, "options")[0]?.checksum
    if (checksum !== "sha256:${var.sacar_sha256}") problems.push(`${taskName}: checksum ${String(checksum)}`)
    const command = blocks(task, "config")[0]?.command
    const expected = `\${NOMAD_TASK_DIR}/${distTop("${var.sacar_version}")}/sacar`
    if (command !== expected) problems.push(`${taskName}: runs ${String(command)}, not ${expected}`)
  }
  return problems
}

for (const file of [controllerFile, reconcilerFile]) {
  test(`${file.split("/").pop()}: fetches Sacar's dist tarball with an artifact stanza checked by sha256`, async () => {
    const { version } = JSON.parse(await readFile(join(deployDir, "..", "package.json"), "utf8")) as { version: string }
    assert.deepEqual(artifactProblems(await parseHcl(file), version), [])
  })
}

test("the artifact check catches a missing checksum and a command outside the tarball", async () => {
  const text = await readFile(reconcilerFile, "utf8")
  const unchecked = text.replace("checksum = \"sha256:${var.sacar_sha256}\"", "")
  const local = text.replace(/command = "[^"]*"/, "command = \"/usr/local/lib/sacar/node_modules/.bin/node\"")
  assert.notEqual(unchecked, text)
  assert.notEqual(local, text)
  assert.deepEqual(artifactProblems(await parseHcl(reconcilerFile, unchecked), "0.1.0"), [
    "reconciler: checksum undefined"
  ])
  assert.match(artifactProblems(await parseHcl(reconcilerFile, local), "0.1.0").join(), /runs \/usr\/local\/lib\/sacar/)
})
