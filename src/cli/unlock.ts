import { removeKeyCommand } from "./remove-key-command.ts"

export const main = removeKeyCommand({
  name: "unlock",
  help: `usage: sacar unlock <app>

Lifts a deploy freeze (deletes sacar/<app>/lock).

example:
  sacar unlock shop
`,
  key: (keys, app) => keys.lock(app),
  done: (app) => `${app} unlocked`,
  absent: (app) => `${app} was not locked`
})
