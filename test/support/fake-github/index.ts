export type { OperationId } from "./openapi.ts"
export { startFakeGitHub } from "./server.ts"
export type {
  CheckRunRecord,
  CommitStatusRecord,
  DeploymentRecord,
  DeploymentStatusRecord,
  FakeGitHub,
  FakeGitHubOptions,
  IssuedToken,
  RecordedRequest,
  Violation
} from "./server.ts"
export { examplePayload, sendWebhook } from "./webhooks.ts"
export type { DeliveryResult, PayloadOverrides, SendWebhookOptions } from "./webhooks.ts"
