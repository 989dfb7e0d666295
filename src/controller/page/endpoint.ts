/**
 * The status page's routes: `GET /` (the page, rendered here so it reads without
 * JavaScript and with curl), `GET /page/events` (its live updates), and
 * `POST /page/login` / `POST /page/logout` (the browser session, see session.ts).
 * Reading needs the same token as `GET /v1/apps`; nothing here writes to Consul.
 *
 * Live updates are server-sent events, one event per response: the request is held
 * until the controller's watch moves past the index the browser has seen (or
 * HOLD_MS passes), answered with the apps that changed, and closed; EventSource
 * reconnects by itself with Last-Event-ID. This fits the server's buffered answers
 * and its per-request timeout, costs nothing while nothing changes, and paces a
 * browser to at most one update per RETRY_MS however fast the nodes write.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import { checkBearer, tokenOff } from "../api/bearer.ts"
import { header, type HttpRequest, type HttpResponse, text } from "../http/types.ts"
import type { PageFeed, PageState } from "./feed.ts"
import { appSection, loginHtml, pageHtml } from "./html.ts"
import { clearedCookie, hasSession, sessionCookie, tokenMatches } from "./session.ts"
import { appView, summaryOf } from "./view.ts"

export interface PageDeps {
  /** The read token of /v1 (SACAR_READ_TOKEN); undefined: the page is off like /v1. */
  readonly token: Redacted.Redacted<string> | undefined
  readonly feed: PageFeed
}

/** Below the server's 8 s handler timeout (src/controller/http/server.ts), so a held request ends as an answer, not a 503. */
export const HOLD_MS = 6_000
/** The pause EventSource takes before asking again after an update. */
const RETRY_MS = 1_000

export const isPagePath = (path: string): boolean => path === "/" || path.startsWith("/page/")

const HTML = "text/html; charset=utf-8"

const html = (status: number, body: string, headers: Record<string, string> = {}): HttpResponse => ({
  status,
  headers: { "content-type": HTML, ...headers },
  body
})

const seeOther = (cookie: string): HttpResponse => ({
  status: 303,
  headers: { location: "/", "set-cookie": cookie, "content-type": "text/plain; charset=utf-8" },
  body: "See /\n"
})

const notAllowed = (allowed: string): HttpResponse => ({
  ...text(405, `method not allowed; use ${allowed}\n`),
  headers: { "content-type": "text/plain; charset=utf-8", allow: allowed }
})

/** undefined when the request may read; otherwise what to answer. */
const denied = (deps: PageDeps, req: HttpRequest, nowMs: number, page: boolean): HttpResponse | undefined => {
  if (deps.token === undefined)
    return page
      ? html(503, loginHtml(tokenOff("SACAR_READ_TOKEN")))
      : text(503, `${tokenOff("SACAR_READ_TOKEN")}\n`)
  if (header(req, "authorization") !== undefined) return checkBearer(deps.token, req, "SACAR_READ_TOKEN")
  if (hasSession(deps.token, req, nowMs)) return undefined
  return page
    ? html(401, loginHtml(undefined), { "www-authenticate": "Bearer realm=\"sacar\"" })
    : text(401, "sign in at / first\n")
}

const render = (state: PageState, now: Date, only?: (changedAt: number) => boolean) => {
  const views = state.apps.map((a) => ({ a, view: appView(a.report, now) }))
  const sections = new Map<string, string>()
  for (const { a, view } of views)
    if (only === undefined || only(a.changedAt)) sections.set(a.report.app, appSection(view, now))
  return { sections, summary: summaryOf(views.map((v) => v.view)), order: views.map((v) => v.a.report.app) }
}

const page = (deps: PageDeps) =>
  Effect.gen(function*() {
    const state = yield* deps.feed.current
    const now = new Date(yield* Clock.currentTimeMillis)
    const { sections, summary } = render(state, now)
    return html(200, pageHtml({ index: state.index, summary, sections: [...sections.values()], renderedAt: now }))
  })

const seenIndex = (req: HttpRequest): number => {
  const candidates = [header(req, "last-event-id"), req.query.get("index") ?? undefined]
  return Math.max(0, ...candidates.map((c) => Number(c ?? "0")).filter((n) => Number.isSafeInteger(n)))
}

const events = (deps: PageDeps, req: HttpRequest) =>
  Effect.gen(function*() {
    const seen = seenIndex(req)
    const state = yield* deps.feed.after(seen, HOLD_MS)
    const stream = { "content-type": "text/event-stream; charset=utf-8" }
    if (state === undefined) return { status: 200, headers: stream, body: `: nothing new\nretry: 100\n\n` }
    const now = new Date(yield* Clock.currentTimeMillis)
    // After a reset (the index went backwards) the browser's index means nothing: send all.
    const { sections, summary, order } = render(
      state,
      now,
      state.index < seen ? undefined : (changedAt) => changedAt > seen
    )
    const update = { index: state.index, summary, order, apps: Object.fromEntries(sections) }
    return {
      status: 200,
      headers: stream,
      body: `id: ${state.index}\nretry: ${RETRY_MS}\nevent: apps\ndata: ${JSON.stringify(update)}\n\n`
    }
  })

const formToken = (req: HttpRequest): string => new URLSearchParams(req.body.toString("utf8")).get("token") ?? ""

export const handlePage = (deps: PageDeps, req: HttpRequest): Effect.Effect<HttpResponse> =>
  Effect.gen(function*() {
    const nowMs = yield* Clock.currentTimeMillis
    const { path, method } = req
    if (path === "/page/login") {
      if (method !== "POST") return notAllowed("POST")
      if (deps.token === undefined) return html(503, loginHtml(tokenOff("SACAR_READ_TOKEN")))
      return tokenMatches(deps.token, formToken(req))
        ? seeOther(sessionCookie(deps.token, req, nowMs))
        : html(401, loginHtml("That is not the controller's read token."))
    }
    if (path === "/page/logout") return method === "POST" ? seeOther(clearedCookie(req)) : notAllowed("POST")
    if (path !== "/" && path !== "/page/events") return text(404, `no such page: ${path}\n`)
    if (method !== "GET" && method !== "HEAD") return notAllowed("GET")
    const refused = denied(deps, req, nowMs, path === "/")
    if (refused !== undefined) return refused
    return yield* (path === "/" ? page(deps) : events(deps, req))
  })
