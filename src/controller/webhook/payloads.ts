/**
 * The parts of GitHub's webhook payloads the controller reads, as lenient schemas:
 * unknown fields are ignored, nullable fields GitHub documents as nullable are
 * nullable here, and nothing beyond what a handler needs is required, so a payload
 * that grows new fields (or a GHES one that lacks some) still decodes.
 */
import * as Schema from "effect/Schema"

const Login = Schema.Struct({ login: Schema.String })
/** A deployment's creator: `type` is "Bot" for a GitHub App or Actions' token. */
const Creator = Schema.Struct({ login: Schema.String, type: Schema.optionalKey(Schema.String) })
const Repository = Schema.Struct({ full_name: Schema.String })
const Installation = Schema.Struct({ id: Schema.Number })

const common = {
  repository: Repository,
  installation: Schema.optionalKey(Schema.NullOr(Installation)),
  sender: Schema.optionalKey(Schema.NullOr(Login))
}

export const PushPayload = Schema.Struct({
  ...common,
  ref: Schema.String,
  after: Schema.String,
  deleted: Schema.optionalKey(Schema.Boolean)
})
export type PushPayload = typeof PushPayload.Type

export const CheckSuitePayload = Schema.Struct({
  ...common,
  action: Schema.String,
  check_suite: Schema.Struct({
    head_sha: Schema.String,
    head_branch: Schema.optionalKey(Schema.NullOr(Schema.String))
  })
})
export type CheckSuitePayload = typeof CheckSuitePayload.Type

export const CheckRunPayload = Schema.Struct({
  ...common,
  action: Schema.String,
  check_run: Schema.Struct({
    name: Schema.String,
    head_sha: Schema.String,
    external_id: Schema.optionalKey(Schema.NullOr(Schema.String)),
    check_suite: Schema.optionalKey(
      Schema.NullOr(Schema.Struct({ head_branch: Schema.optionalKey(Schema.NullOr(Schema.String)) }))
    )
  }),
  requested_action: Schema.optionalKey(Schema.NullOr(Schema.Struct({ identifier: Schema.String })))
})
export type CheckRunPayload = typeof CheckRunPayload.Type

export const WorkflowRunPayload = Schema.Struct({
  ...common,
  action: Schema.String,
  workflow_run: Schema.Struct({
    name: Schema.optionalKey(Schema.NullOr(Schema.String)),
    path: Schema.optionalKey(Schema.NullOr(Schema.String)),
    head_sha: Schema.String,
    head_branch: Schema.optionalKey(Schema.NullOr(Schema.String)),
    conclusion: Schema.optionalKey(Schema.NullOr(Schema.String)),
    /** What triggered the run: only "push" builds a release. */
    event: Schema.optionalKey(Schema.NullOr(Schema.String)),
    /** The repository the run's commit comes from: a fork's for a fork's pull request. */
    head_repository: Schema.optionalKey(Schema.NullOr(Repository))
  }),
  workflow: Schema.optionalKey(
    Schema.NullOr(
      Schema.Struct({
        name: Schema.optionalKey(Schema.NullOr(Schema.String)),
        path: Schema.optionalKey(Schema.NullOr(Schema.String))
      })
    )
  )
})
export type WorkflowRunPayload = typeof WorkflowRunPayload.Type

export const DeploymentPayload = Schema.Struct({
  ...common,
  action: Schema.String,
  deployment: Schema.Struct({
    id: Schema.Number,
    sha: Schema.String,
    ref: Schema.optionalKey(Schema.NullOr(Schema.String)),
    environment: Schema.String,
    task: Schema.optionalKey(Schema.NullOr(Schema.String)),
    description: Schema.optionalKey(Schema.NullOr(Schema.String)),
    payload: Schema.optionalKey(Schema.Unknown),
    creator: Schema.optionalKey(Schema.NullOr(Creator)),
    performed_via_github_app: Schema.optionalKey(Schema.NullOr(Schema.Struct({ id: Schema.Number })))
  }),
  /** Present when a workflow job (`environment:` in a job) made the Deployment. */
  workflow_run: Schema.optionalKey(Schema.Unknown),
  workflow: Schema.optionalKey(Schema.Unknown)
})
export type DeploymentPayload = typeof DeploymentPayload.Type
