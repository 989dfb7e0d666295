/**
 * HTML for the status page, as strings. Everything that comes from KV goes through
 * `esc`: documents are written by operators, CI and `consul kv put`, and a script's
 * log tail can contain anything.
 */
import { formatDuration, roughAge } from "../../spec/duration.ts"
import { shortSha } from "../../spec/names.ts"
import { GRID_MAX_NODES } from "./view.ts"
import type { AppView, CellView, FailureView, PageDeployView, ReleaseRow, ReleaseSummary } from "./view.ts"

/** Nodes of a big deploy listed by name (those not live yet) before "and N more". */
const DEPLOY_NAMED = 40

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "\"": "&quot;",
  "'": "&#39;"
}

export const esc = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!)

const ago = (iso: string | undefined, now: Date): string => {
  const text = roughAge(iso, now)
  // The page's script keeps the text current from `datetime`; without JS it is the age at render.
  return text === undefined ? "" : `<time datetime="${esc(iso!)}">${text} ago</time>`
}

const sha = (full: string): string => `<code title="${esc(full)}">${esc(shortSha(full))}</code>`

const cell = (c: CellView | undefined, now: Date): string => {
  if (c === undefined) return `<td class="none">-</td>`
  const steps = c.steps.map((s) => `${s.step} ${formatDuration(s.ms)}`).join(", ")
  const title = [steps, c.message].filter((t) => t !== undefined && t !== "").join(" — ")
  const done = c.phase === "ready" || c.phase === "failed"
  const when = done ? formatDuration(c.totalMs) : ago(c.startedAt, now)
  // Each step's time under the phase: where a slow node spent it shows without hovering.
  const lines = c.steps.length === 0 ? "" : `<br><small class="steps">${esc(steps)}</small>`
  return `<td class="ph-${esc(c.phase)}" title="${esc(title)}">${esc(c.phase)} <small>${when}</small>${lines}</td>`
}

const summaryCell = (s: ReleaseSummary): string => {
  const phases = s.phases.map((p) => {
    const named = p.nodes.length === 0
      ? ""
      : `: ${p.nodes.map(esc).join(", ")}${p.count > p.nodes.length ? ` and ${p.count - p.nodes.length} more` : ""}`
    return `<span class="ph-${esc(p.phase.replace(/ /g, "-"))}">${esc(p.phase)} ${p.count}${named}</span>`
  })
  const steps = s.steps.map((t) =>
    `${esc(t.step)} ${formatDuration(t.medianMs)} (slowest ${formatDuration(t.maxMs)} on ${esc(t.slowest)})`
  )
  return `<td class="summary">${phases.join(" ")}${
    steps.length > 0 ? `<br><small>median ${steps.join(", ")}</small>` : ""
  }</td>`
}

const releaseRow = (r: ReleaseRow, now: Date): string =>
  `<tr data-sha="${esc(r.sha)}"><th>${sha(r.sha)}${r.live ? " <b class=\"live\">live</b>" : ""} ${
    ago(r.createdAt, now)
  }</th>${r.summary === undefined ? r.cells.map((c) => cell(c, now)).join("") : summaryCell(r.summary)}</tr>`

const deploySection = (app: string, d: PageDeployView, now: Date): string => {
  const counts = Object.entries(d.counts).filter(([, n]) => n > 0).map(([p, n]) => `${n} ${p}`).join(", ")
  const state = d.inProgress ? "in progress" : d.counts.failed > 0 ? "finished with failures" : "done"
  // Past GRID_MAX_NODES the live nodes are counted, not listed: the ones still moving are what matter.
  const many = d.nodes.length > GRID_MAX_NODES
  const listed = many ? d.nodes.filter((n) => n.phase !== "live") : d.nodes
  const shown = many ? listed.slice(0, DEPLOY_NAMED) : listed
  const more = listed.length - shown.length
  const nodes = shown
    .map((n) =>
      `<li class="ph-${n.phase}" data-node="${esc(n.node)}"${n.message ? ` title="${esc(n.message)}"` : ""}>${
        esc(n.node)
      } <b>${n.phase}</b></li>`
    )
    .join("") + (more > 0 ? `<li>and ${more} more</li>` : "")
  return `<div class="deploy" data-app="${esc(app)}" data-state="${state}"><h3>Deploy ${
    sha(d.sha)
  } generation ${d.generation} <span class="state">${state}</span></h3><p>${
    d.requestedBy ? `by ${esc(d.requestedBy)} ` : ""
  }${ago(d.requestedAt, now)}${d.force ? " <b>forced</b>" : ""} · ${
    esc(counts)
  }</p><ol class="nodes">${nodes}</ol></div>`
}

const failure = (f: FailureView, now: Date): string =>
  `<details class="failure" data-key="${f.kind}-${esc(f.sha)}-${esc(f.node)}"><summary>${f.kind} ${sha(f.sha)} on ${
    esc(f.node)
  }: ${esc(f.message)} ${ago(f.at, now)}</summary><pre>${
    esc(f.logTail === "" ? "(the script printed nothing)" : f.logTail)
  }</pre></details>`

/** One app's section; the live updates replace whole sections by their id. */
export const appSection = (v: AppView, now: Date): string => {
  const parts: string[] = []
  parts.push(`<h2>${esc(v.app)}</h2><p class="about">${v.about.map(esc).join(" · ")}</p>`)
  if (v.lock !== undefined) {
    parts.push(
      `<p class="lock">Locked by ${esc(v.lock.by)}: ${esc(v.lock.reason)}${
        v.lock.until ? ` until ${esc(v.lock.until)}` : ""
      }</p>`
    )
  }
  if (v.pin !== undefined)
    parts.push(`<p class="pin">Pinned at ${sha(v.pin.sha)} by ${esc(v.pin.by)}: ${esc(v.pin.reason)}</p>`)
  for (const p of v.problems) parts.push(`<p class="problem">${esc(p)}</p>`)
  if (v.deploy !== undefined) parts.push(deploySection(v.app, v.deploy, now))
  if (v.releases.length === 0) parts.push(`<p class="none">No releases.</p>`)
  else {
    const gridded = v.releases.some((r) => r.summary === undefined)
    const head = gridded
      ? v.nodes.map((n) =>
        `<th title="current ${n.current === null ? "none" : esc(n.current)}">${esc(n.node)}${
          n.gone ? " (gone)" : ""
        }</th>`
      ).join("")
      : `<th>${v.nodes.length} nodes</th>`
    const rows = v.releases.map((r) => releaseRow(r, now)).join("")
    parts.push(
      `<div class="grid"><table><thead><tr><th>release</th>${head}</tr></thead><tbody>${rows}</tbody></table></div>`
    )
  }
  if (v.failures.length > 0) {
    parts.push(`<h3>Recent failures</h3>${v.failures.map((f) => failure(f, now)).join("")}`)
  }
  return `<section class="app" id="app-${esc(v.app)}" data-app="${esc(v.app)}">${parts.join("")}</section>`
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1em;align-items:baseline;padding:.6em 1em;background:#263238;color:#eee}
header h1{font-size:1.2em;margin:0} header form{margin-left:auto}
main{padding:0 1em 2em} section.app{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.2em 1em 1em}
h2{margin:.5em 0 0} h3{font-size:1em;margin:.8em 0 .3em} .about{color:#666;margin:.2em 0}
.grid{overflow-x:auto} table{border-collapse:collapse} th,td{border:1px solid #e3e3e3;padding:2px 6px;white-space:nowrap;text-align:left}
ol.nodes{display:flex;flex-wrap:wrap;gap:4px;list-style:none;padding:0;margin:0} ol.nodes li{padding:1px 6px;border-radius:4px}
.ph-ready,.ph-live{background:#d7f5dd} .ph-failed{background:#fbd5d5} .ph-waiting{background:#eee}
.ph-pending,.ph-download,.ph-extract,.ph-lock,.ph-venv,.ph-install,.ph-prepare,.ph-predeploy,.ph-deploying{background:#fff3c4}
.lock,.problem{background:#fbd5d5;padding:.3em .6em} .pin{background:#e3ecfb;padding:.3em .6em} b.live{color:#1b7a32}
small.steps{color:#555} pre{background:#111;color:#ddd;padding:.6em;overflow-x:auto;max-height:20em} #state.live{color:#8f8} #state.lost{color:#f88}
`

/**
 * Keeps ages current and applies the updates the controller sends (see events.ts).
 * It runs in the browser, so its time is the browser's `Date`.
 */
const SCRIPT = `
(() => {
  const state = document.getElementById("state")
  const apps = document.getElementById("apps")
  const tick = () => {
    for (const t of document.querySelectorAll("time[datetime]")) {
      const s = Math.max(0, Math.round((Date.now() - Date.parse(t.getAttribute("datetime"))) / 1000))
      t.textContent = (s < 60 ? s + "s" : s < 3600 ? Math.floor(s / 60) + "m" : s < 86400 ? Math.floor(s / 3600) + "h" : Math.floor(s / 86400) + "d") + " ago"
    }
  }
  setInterval(tick, 5000)
  const apply = (update) => {
    // Failures someone opened stay open across updates.
    const open = new Set([...document.querySelectorAll("details[open]")].map((d) => d.dataset.key))
    const next = update.order.map((name) => {
      if (name in update.apps) {
        const holder = document.createElement("div")
        holder.innerHTML = update.apps[name]
        return holder.firstElementChild
      }
      return document.getElementById("app-" + name)
    })
    if (next.some((el) => el === null)) return location.reload()
    apps.replaceChildren(...next)
    if (update.order.length === 0) apps.innerHTML = "<p>No apps under the prefix yet.</p>"
    document.getElementById("summary").textContent = update.summary
    document.title = "Sacar · " + update.summary
    document.body.dataset.index = String(update.index)
    document.getElementById("asof").textContent = new Date().toISOString()
    for (const d of document.querySelectorAll("details[data-key]")) if (open.has(d.dataset.key)) d.open = true
    tick()
  }
  const connect = () => {
    const source = new EventSource("/page/events?index=" + document.body.dataset.index)
    source.addEventListener("open", () => { state.textContent = "live"; state.className = "live" })
    source.addEventListener("apps", (e) => apply(JSON.parse(e.data)))
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return
      // Refused (signed out, controller restarting): say so, try again in a while.
      state.textContent = "not live: the controller refused the updates; retrying"
      state.className = "lost"
      setTimeout(connect, 5000)
    })
  }
  connect()
})()
`

export interface PageShell {
  readonly index: number
  readonly summary: string
  readonly sections: ReadonlyArray<string>
  readonly renderedAt: Date
}

export const pageHtml = (shell: PageShell): string =>
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sacar · ${esc(shell.summary)}</title><style>${STYLE}</style></head>
<body data-index="${shell.index}">
<header><h1>Sacar</h1><span id="summary">${esc(shell.summary)}</span><span>as of <span id="asof">${
    esc(shell.renderedAt.toISOString())
  }</span> · <span id="state">not live (static page)</span></span>
<form method="post" action="/page/logout"><button>Sign out</button></form></header>
<main id="apps">${
    shell.sections.length === 0 ? "<p>No apps under the prefix yet.</p>" : shell.sections.join("\n")
  }</main>
<script>${SCRIPT}</script>
</body></html>
`

export const loginHtml = (problem: string | undefined): string =>
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sacar · sign in</title><style>${STYLE}</style></head>
<body><header><h1>Sacar</h1></header><main>
<h2>Sign in</h2>
${problem === undefined ? "" : `<p class="problem">${esc(problem)}</p>`}
<p>The status page needs the controller's read token (the bearer token of <code>GET /v1/apps</code>).
From a script, send it as <code>Authorization: Bearer &lt;token&gt;</code> instead.</p>
<form method="post" action="/page/login"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button>Sign in</button></form>
</main></body></html>
`
