/**
 * Where the demo's words go. On a terminal: permanent lines scroll as usual and a
 * live table stays at the bottom, redrawn in place. Anywhere else (a pipe, CI, a
 * test, --once): plain lines only, one per event, nothing redrawn.
 */
export interface Display {
  /** A permanent line (or several, joined with \n). */
  say(text: string): void
  /** Replaces the live table; plain output ignores it. */
  table(lines: ReadonlyArray<string>): void
  /** Leaves the last table where it is, as ordinary output. */
  freeze(): void
  readonly live: boolean
}

export const plainDisplay = (write: (text: string) => void): Display => ({
  live: false,
  say: (text) => write(`${text}\n`),
  table: () => {},
  freeze: () => {}
})

/** `columns` keeps each table line on one terminal row, so moving up N rows erases it. */
export const liveDisplay = (write: (text: string) => void, columns: () => number): Display => {
  let footer: ReadonlyArray<string> = []
  const fit = (l: string) => {
    const width = Math.max(20, columns() - 1)
    return l.length > width ? `${l.slice(0, width - 1)}…` : l
  }
  const erase = () => (footer.length > 0 ? `\x1b[${footer.length}F\x1b[J` : "")
  const draw = () => footer.map((l) => `${l}\n`).join("")
  return {
    live: true,
    say: (text) => write(`${erase()}${text}\n${draw()}`),
    table: (lines) => {
      const next = lines.map(fit)
      if (next.length === footer.length && next.every((l, i) => l === footer[i])) return
      const before = erase()
      footer = next
      write(`${before}${draw()}`)
    },
    freeze: () => {
      footer = []
    }
  }
}
