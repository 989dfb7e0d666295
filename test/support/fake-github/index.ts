export { startFakeGitHub } from "./server.ts"
export type { FakeGitHub, FakeGitHubOptions } from "./server.ts"
export { examplePayload, sendWebhook } from "./webhooks.ts"
