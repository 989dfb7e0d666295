/** The table of subcommands: name, one-line summary, and where the code lives. */
type Main = { main: (argv: string[]) => Promise<number> }

export const COMMANDS: ReadonlyArray<{ name: string; summary: string; load: () => Promise<Main> }> = [
  {
    name: "controller",
    summary: "run the controller (GitHub webhooks, notify endpoint, reporting)",
    load: () => import("./controller.ts")
  },
  { name: "reconciler", summary: "run the node reconciler (one per machine)", load: () => import("./reconciler.ts") },
  { name: "demo", summary: "everything on one machine: a release walked to live", load: () => import("./demo.ts") },
  { name: "app", summary: "sacar app set <app> ...: create or change an app's config", load: () => import("./app.ts") },
  { name: "status", summary: "releases x nodes, deploy state (--watch, --json)", load: () => import("./status.ts") },
  {
    name: "release",
    summary: "sacar release <app> <sha>: prepare a release on every node",
    load: () => import("./release.ts")
  },
  {
    name: "deploy",
    summary: "sacar deploy <app> <sha> [--force] [--wait]: make a release live",
    load: () => import("./deploy.ts")
  },
  {
    name: "logs",
    summary: "sacar logs <app> [--node N] [--sha S] [-f]: what the nodes recorded",
    load: () => import("./logs.ts")
  },
  {
    name: "rollback",
    summary: "sacar rollback <app>: deploy the previously live release, and pin",
    load: () => import("./rollback.ts")
  },
  {
    name: "lock",
    summary: "sacar lock <app> -m REASON [--until TIME]: freeze deploys",
    load: () => import("./lock.ts")
  },
  { name: "unlock", summary: "sacar unlock <app>: lift a deploy freeze", load: () => import("./unlock.ts") },
  {
    name: "unpin",
    summary: "sacar unpin <app>: resume auto-deploy after a rollback",
    load: () => import("./unpin.ts")
  },
  { name: "notify", summary: "tell the controller an artifact is ready (from CI)", load: () => import("./notify.ts") },
  { name: "pack", summary: "build the release tarball from a Python project", load: () => import("./pack.ts") },
  {
    name: "dev-consul",
    summary: "in-memory Consul for the demo and tests (never production)",
    load: () => import("../devconsul/cli.ts")
  }
]

export const commandModule = (name: string) => COMMANDS.find((c) => c.name === name)?.load

export const usage = (): string =>
  [
    "usage: sacar <command> [options]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    "",
    "Run `sacar <command> --help` for a command's options and examples; `sacar --version` prints the version.",
    "Consul is found through CONSUL_HTTP_ADDR (default http://127.0.0.1:8500).",
    ""
  ].join("\n")
