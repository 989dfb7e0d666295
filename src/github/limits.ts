// GitHub's limits on what we send, enforced before sending: GitHub answers 422 to an
// over-long field, and a report that fails for a long log line is worse than a cut one.

export const OUTPUT_MAX_BYTES = 65535
export const MAX_ACTIONS = 3
export const ACTION_LABEL_MAX = 20
export const ACTION_DESCRIPTION_MAX = 40
export const ACTION_IDENTIFIER_MAX = 20
export const STATUS_DESCRIPTION_MAX = 140
export const TITLE_MAX = 255

const chars = (s: string): Array<string> => Array.from(s)

/** Cuts `s` to at most `max` characters (code points), ending with "…" when cut. */
export const truncateChars = (s: string, max: number): string => {
  const cs = chars(s)
  return cs.length <= max ? s : cs.slice(0, max - 1).join("") + "…"
}

/**
 * Cuts `s` to at most `maxBytes` UTF-8 bytes, on a character boundary, and says so at the
 * end: GitHub counts check-run summary and text limits in bytes, not characters.
 */
export const truncateBytes = (s: string, maxBytes: number = OUTPUT_MAX_BYTES): string => {
  const total = Buffer.byteLength(s, "utf8")
  if (total <= maxBytes) return s
  const note = `\n\n… (cut by Sacar: ${total} bytes, GitHub allows ${maxBytes})`
  const budget = maxBytes - Buffer.byteLength(note, "utf8")
  let used = 0
  let out = ""
  for (const c of s) {
    const n = Buffer.byteLength(c, "utf8")
    if (used + n > budget) break
    used += n
    out += c
  }
  return out + note
}

/** One line, no surrounding blanks, not empty, at most TITLE_MAX characters. */
export const sanitizeTitle = (title: string, fallback: string): string => {
  const oneLine = title.replace(/\s+/g, " ").trim()
  return truncateChars(oneLine === "" ? fallback : oneLine, TITLE_MAX)
}

export interface CheckRunAction {
  readonly label: string
  readonly description: string
  readonly identifier: string
}

/**
 * Labels and descriptions are cut to fit; identifiers are not, because a click sends the
 * identifier back and a cut one would no longer mean anything. Returns the problem as a
 * string when the actions cannot be sent.
 */
export const checkActions = (
  actions: ReadonlyArray<CheckRunAction>
): { readonly ok: Array<CheckRunAction> } | { readonly problem: string } => {
  if (actions.length > MAX_ACTIONS) {
    return { problem: `${actions.length} actions, GitHub allows at most ${MAX_ACTIONS}` }
  }
  const ok: Array<CheckRunAction> = []
  for (const a of actions) {
    const n = chars(a.identifier).length
    if (n === 0 || n > ACTION_IDENTIFIER_MAX) {
      return { problem: `action identifier "${a.identifier}" must be 1 to ${ACTION_IDENTIFIER_MAX} characters` }
    }
    if (a.label.trim() === "") return { problem: `action "${a.identifier}" has an empty label` }
    ok.push({
      label: truncateChars(a.label, ACTION_LABEL_MAX),
      description: truncateChars(a.description, ACTION_DESCRIPTION_MAX),
      identifier: a.identifier
    })
  }
  return { ok }
}
