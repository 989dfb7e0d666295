import { removeKeyCommand } from "./remove-key-command.ts"

export const main = removeKeyCommand({
  name: "unpin",
  help: `usage: sacar unpin <app>

Resumes auto-deploy after a rollback (deletes sacar/<app>/pin).

example:
  sacar unpin shop
`,
  key: (keys, app) => keys.pin(app),
  done: (app) => `${app} unpinned: auto-deploy resumes with the next ready release`,
  absent: (app) => `${app} was not pinned`
})
