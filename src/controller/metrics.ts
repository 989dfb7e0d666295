/**
 * The controller's Prometheus metrics, kept as plain counters and gauges: a handful
 * of series does not justify a metrics library, and the text format is small.
 */
type Labels = Readonly<Record<string, string>>

interface Family {
  readonly help: string
  readonly type: "counter" | "gauge"
  readonly series: Map<string, { labels: Labels; value: number }>
}

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const labelText = (labels: Labels) => {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`
}

export class Metrics {
  readonly #families = new Map<string, Family>()

  constructor() {
    this.describe("sacar_webhooks_total", "counter", "GitHub webhook deliveries by event and result.")
    this.describe("sacar_github_requests_total", "counter", "Requests sent to the GitHub API by operation and status.")
    this.describe(
      "sacar_github_parked_total",
      "counter",
      "GitHub calls parked because GitHub will not accept them (422, a missing permission, an app not installed)."
    )
    this.describe("sacar_notify_total", "counter", "Artifact-ready notifications by result.")
    this.describe(
      "sacar_reconcile_lag_seconds",
      "gauge",
      "Seconds between a KV change and the end of the report pass that saw it."
    )
    this.describe("sacar_releases", "gauge", "Releases by app and phase, as last seen by the leader.")
    this.describe("sacar_leader", "gauge", "1 when this replica holds the leader lock.")
    this.describe(
      "sacar_report_decodes_total",
      "counter",
      "Times the leader decoded an app's documents (once per change of that app's keys)."
    )
    this.describe("sacar_report_passes_total", "counter", "Report passes over one app, by loop (kv, github).")
    this.describe("sacar_report_renders_total", "counter", "Times the leader rendered an app's check runs.")
  }

  describe(name: string, type: Family["type"], help: string): void {
    if (!this.#families.has(name)) this.#families.set(name, { help, type, series: new Map() })
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const s = this.#series(name, labels)
    s.value += by
  }

  set(name: string, labels: Labels, value: number): void {
    this.#series(name, labels).value = value
  }

  /** Replaces every series of a gauge family, so vanished label sets disappear. */
  replace(name: string, rows: ReadonlyArray<{ labels: Labels; value: number }>): void {
    const family = this.#family(name)
    family.series.clear()
    for (const row of rows) family.series.set(labelText(row.labels), { labels: row.labels, value: row.value })
  }

  get(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.series.get(labelText(labels))?.value ?? 0
  }

  render(): string {
    const lines: string[] = []
    for (const [name, family] of this.#families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`)
      for (const { labels, value } of family.series.values()) lines.push(`${name}${labelText(labels)} ${value}`)
    }
    return `${lines.join("\n")}\n`
  }

  #family(name: string): Family {
    const family = this.#families.get(name)
    if (family === undefined) throw new Error(`metric ${name} is not described`)
    return family
  }

  #series(name: string, labels: Labels) {
    const family = this.#family(name)
    const key = labelText(labels)
    let s = family.series.get(key)
    if (s === undefined) {
      s = { labels, value: 0 }
      family.series.set(key, s)
    }
    return s
  }
}
