/**
 * The Consul service: the only place that knows Consul's wire format (base64
 * values, index headers, flags beyond 2^53). Everything above it speaks in keys and
 * UTF-8 string values. Implemented in `http.ts` (the layer built from CONSUL_* env);
 * higher-level pieces (watch, session, lock, semaphore) live in their own files and
 * are built from these primitives.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"

export interface KvEntry {
  readonly key: string
  /** UTF-8 value; null when the key holds no bytes. */
  readonly value: string | null
  /** uint64 as a decimal string: lock flags exceed 2^53. */
  readonly flags: string
  readonly createIndex: number
  readonly modifyIndex: number
  readonly lockIndex: number
  readonly session?: string
}

/** A read together with the X-Consul-Index it was served at, for blocking reads. */
export interface Indexed<A> {
  readonly value: A
  readonly index: number
}

export interface BlockingOptions {
  /** Return once the result's index is above this (0: do not block). */
  readonly index: number
  /** Upper bound on the wait, e.g. "5m"; Consul adds up to 1/16 jitter. */
  readonly wait?: string
  /** `?consistent`: the leader confirms it still leads before answering (lock monitoring). */
  readonly consistent?: boolean
  /**
   * `?stale`: any server answers from its own copy, which may lag the leader by a little
   * (X-Consul-LastContact). For reads that only show things, never for one that decides a
   * write (docs/decisions.md, "Stale reads").
   */
  readonly stale?: boolean
}

export interface PutOptions {
  readonly cas?: number
  readonly flags?: string | bigint
  readonly acquire?: string
  readonly release?: string
}

export type TxnOp =
  | { readonly verb: "set"; readonly key: string; readonly value: string; readonly flags?: string }
  | {
    readonly verb: "cas"
    readonly key: string
    readonly value: string
    readonly index: number
    readonly flags?: string
  }
  | {
    readonly verb: "lock" | "unlock"
    readonly key: string
    readonly value: string
    readonly session: string
    readonly flags?: string
  }
  | { readonly verb: "get" | "get-tree" | "delete" | "delete-tree" | "check-not-exists"; readonly key: string }
  | { readonly verb: "check-index" | "delete-cas"; readonly key: string; readonly index: number }
  | { readonly verb: "check-session"; readonly key: string; readonly session: string }

export type TxnResult =
  | { readonly ok: true; readonly entries: ReadonlyArray<KvEntry> }
  | { readonly ok: false; readonly errors: ReadonlyArray<{ readonly opIndex: number; readonly what: string }> }

export interface SessionOptions {
  readonly name: string
  /**
   * Go duration, e.g. "15s"; Consul accepts its session_ttl_min (10s unless raised) to
   * 24h. A TTL below the configured SACAR_SESSION_TTL_MIN is raised to it.
   */
  readonly ttl: string
  readonly behavior: "release" | "delete"
  readonly lockDelay?: string
  /**
   * The Consul node the session belongs to (its health checks invalidate it, and the
   * ACL rule `session "<node>"` is matched against it). Omitted: the agent's own node.
   */
  readonly node?: string
}

export interface SessionInfo {
  readonly id: string
  readonly name: string
  readonly node: string
  readonly ttl: string
  readonly behavior: string
  readonly lockDelayNs: number
}

/**
 * Consul could not be reached, answered with a server error, or rate-limited the
 * request (429): retry later, not before `retryAfterMs` when Consul said so.
 */
export class ConsulUnavailable extends Data.TaggedError("ConsulUnavailable")<{
  readonly address: string
  readonly operation: string
  readonly message: string
  /** From a Retry-After header, when Consul sent one. */
  readonly retryAfterMs?: number
}> {}

/** Consul refused the request (4xx other than a cas/lock refusal): a person must look. */
export class ConsulRequestError extends Data.TaggedError("ConsulRequestError")<{
  readonly operation: string
  readonly status: number
  readonly message: string
}> {}

export type ConsulError = ConsulUnavailable | ConsulRequestError

/** Worth trying again later (with `consulRetry`, common/retry.ts): Consul unreachable, 5xx, 429. */
export const isTransientConsulError = (error: { readonly _tag: string }): boolean => error._tag === "ConsulUnavailable"

export class Consul extends Context.Service<Consul, {
  readonly address: string
  readonly get: (key: string, options?: BlockingOptions) => Effect.Effect<Indexed<KvEntry | undefined>, ConsulError>
  /** Every entry under a prefix (`?recurse`), sorted by key. */
  readonly list: (
    prefix: string,
    options?: BlockingOptions
  ) => Effect.Effect<Indexed<ReadonlyArray<KvEntry>>, ConsulError>
  readonly keys: (prefix: string, separator?: string) => Effect.Effect<ReadonlyArray<string>, ConsulError>
  /**
   * The keys under a prefix without their values (`?keys`), sorted, with the index: a
   * blocking query that wakes like `list` but answers with names only, for a reader that
   * fetches only what changed (the controller's report loop).
   */
  readonly listKeys: (
    prefix: string,
    options?: BlockingOptions
  ) => Effect.Effect<Indexed<ReadonlyArray<string>>, ConsulError>
  /** false when a cas, acquire or release was refused. */
  readonly put: (key: string, value: string, options?: PutOptions) => Effect.Effect<boolean, ConsulError>
  readonly delete: (
    key: string,
    options?: { readonly recurse?: boolean; readonly cas?: number }
  ) => Effect.Effect<boolean, ConsulError>
  readonly txn: (ops: ReadonlyArray<TxnOp>) => Effect.Effect<TxnResult, ConsulError>
  readonly createSession: (options: SessionOptions) => Effect.Effect<string, ConsulError>
  /**
   * SACAR_SESSION_TTL_MIN: every session is created with at least this TTL (the client's
   * own TTLs are raised to it), so a session's clock starts from it. Undefined: as asked.
   */
  readonly sessionTtlMinMs?: number
  /**
   * The TTL Consul now runs the session with (it may answer a larger one than was
   * asked for); undefined when the session is gone (expired or destroyed).
   */
  readonly renewSession: (id: string) => Effect.Effect<string | undefined, ConsulError>
  readonly destroySession: (id: string) => Effect.Effect<void, ConsulError>
  readonly sessionInfo: (id: string) => Effect.Effect<SessionInfo | undefined, ConsulError>
  /** GET /v1/status/leader: readiness probes. */
  readonly leader: () => Effect.Effect<string, ConsulError>
  /**
   * GET /v1/agent/self: the node name of the agent this client talks to; undefined for
   * a server without the agent API (dev-consul).
   */
  readonly agentNode: () => Effect.Effect<string | undefined, ConsulError>
}>()("sacar/Consul") {}
