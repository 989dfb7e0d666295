// The nodes and node checks of Consul's catalog, as far as sessions need them: Consul
// creates a session only on a registered node, and only when every check the session is
// bound to (serfHealth by default) exists on that node and is not critical
// (sessionCreateTxn and validateSessionChecksTxn in agent/consul/state/session.go).
// Node names are matched case-insensitively, as Consul's node index does.

export type CheckStatus = "passing" | "warning" | "critical"

interface NodeEntry {
  readonly name: string
  readonly address: string
  readonly checks: Map<string, CheckStatus>
}

export class Catalog {
  readonly #nodes = new Map<string, NodeEntry>()

  /** Adds or updates the node; the checks given are added or updated, others kept. */
  register(name: string, address: string, checks: ReadonlyArray<readonly [string, CheckStatus]>): void {
    const known = this.#nodes.get(name.toLowerCase())
    const entry: NodeEntry = { name, address, checks: known?.checks ?? new Map() }
    for (const [id, status] of checks) entry.checks.set(id, status)
    this.#nodes.set(name.toLowerCase(), entry)
  }

  /** false when the node was not registered. */
  deregisterNode(name: string): boolean {
    return this.#nodes.delete(name.toLowerCase())
  }

  deregisterCheck(node: string, checkId: string): boolean {
    return this.#nodes.get(node.toLowerCase())?.checks.delete(checkId) ?? false
  }

  /** Consul's reason to refuse a session on `node` bound to `checks`, if any (its texts). */
  sessionRefusal(node: string, checks: ReadonlyArray<string>): string | undefined {
    const entry = this.#nodes.get(node.toLowerCase())
    if (entry === undefined) return "Missing node registration"
    for (const id of checks) {
      const status = entry.checks.get(id)
      if (status === undefined) return `Missing check '${id}' registration`
      if (status === "critical") return `Check '${id}' is in critical state`
    }
    return undefined
  }
}
