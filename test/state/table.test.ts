import assert from "node:assert/strict"
import { describe, test } from "node:test"
import type { NodeStatus, ReleaseSpec } from "../../src/spec/documents.ts"
import type { AppState } from "../../src/state/snapshot.ts"
import { renderApp } from "../../src/state/table.ts"

const OLD = "1".repeat(40)
const NEW = "2".repeat(40)

describe("the status table", () => {
  test("a release whose dependencies were reused says from which release, on that node only", () => {
    const status = (reused: boolean): NodeStatus => ({
      node: "web-1",
      updatedAt: "2026-12-01T00:00:00Z",
      current: null,
      deploy: null,
      releases: {
        [NEW]: {
          phase: "ready",
          attempt: 1,
          steps: { venv: { ms: 300 }, install: reused ? { ms: 1, reusedFrom: OLD } : { ms: 4000 } }
        }
      }
    } as NodeStatus)
    const snapshot: AppState = {
      app: "shop",
      config: undefined,
      releases: [{ sha: NEW, spec: {} as ReleaseSpec } as AppState["releases"][number]],
      deploy: undefined,
      statuses: { "web-1": status(true), "web-2": { ...status(false), node: "web-2" } },
      expectedNodes: ["web-1", "web-2"],
      lock: undefined,
      pin: undefined,
      problems: [],
      index: 1
    }
    const table = renderApp(snapshot, new Date("2026-12-01T00:01:00Z"))
    const row = table.split("\n").find((l) => l.trim().startsWith("2222222"))
    assert.match(row ?? "", /ready 301ms \(deps of 1111111\)\s+ready 4\.3s$/)
  })
})
