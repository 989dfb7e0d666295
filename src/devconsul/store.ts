// The state of one dev-consul: KV entries, tombstones, sessions and lock-delays, all
// stamped by a single Raft-like index, plus the notifier blocking queries wait on.
//
// Every write goes through `writeKv` (a transaction with an undo log, so a failed
// txn leaves nothing behind) or a session operation. A write that changes nothing
// (an identical PUT, a failed cas) bumps no index and wakes nobody, as in Consul.

import { randomUUID } from "node:crypto"

export interface StoreEntry {
  readonly key: string
  readonly flags: bigint
  /** null for an empty value, as Consul returns `"Value": null`. */
  readonly value: Buffer | null
  /** undefined when unheld (Consul omits the field). */
  readonly session: string | undefined
  readonly lockIndex: number
  readonly createIndex: number
  readonly modifyIndex: number
}

export type SessionBehavior = "release" | "delete"

export interface Session {
  readonly id: string
  readonly name: string
  readonly node: string
  readonly lockDelayNs: number
  readonly behavior: SessionBehavior
  /** As the client sent it, e.g. "10s"; "" for no TTL. */
  readonly ttl: string
  readonly ttlMs: number
  readonly nodeChecks: readonly string[]
  readonly serviceChecks: readonly unknown[] | null
  readonly createIndex: number
  readonly modifyIndex: number
}

/** What a write touched; blocking queries use it to decide whether to look again. */
export interface Change {
  readonly kvKeys: readonly string[]
  readonly sessions: boolean
}

/**
 * The writes a blocking query waits for: those to one key, those under a prefix ("" is
 * every KV write: what a missing key or a never-used prefix waits for, since it reports
 * the table's index), or session creations and destructions. The store keeps its
 * waiters by interest, so a write calls only the waiters it concerns: with a thousand
 * nodes each holding a few blocking queries, a write costs the few it wakes, not a call
 * per waiter.
 */
export type Interest =
  | { readonly kind: "key"; readonly key: string }
  | { readonly kind: "prefix"; readonly prefix: string }
  | { readonly kind: "sessions" }

/** Consul caps enforced lock-delay at 60s whatever the session asked for. */
const MAX_LOCK_DELAY_MS = 60_000

export class Store {
  #index = 0
  #kvIndex = 0
  #sessionsIndex = 0
  readonly #entries = new Map<string, StoreEntry>()
  /** key -> index of its deletion; kept so a prefix's index never goes backwards. */
  readonly #tombstones = new Map<string, number>()
  /** key -> epoch ms until which `acquire` is refused. */
  readonly #lockDelays = new Map<string, number>()
  readonly #sessions = new Map<string, Session>()
  readonly #sessionTimers = new Map<string, NodeJS.Timeout>()
  /** Waiters by interest (see `Interest`); each set is woken whole, then forgotten by its members. */
  readonly #byKey = new Map<string, Set<() => void>>()
  readonly #byPrefix = new Map<string, Set<() => void>>()
  readonly #onSessions = new Set<() => void>()
  #waiters = 0
  /**
   * How many entries lie under each prefix `hasKeysUnder` was asked about, kept by every
   * creation and deletion: a missing key's blocking query asks at each wake-up, a
   * thousand times per write, and a scan of the table each time would be the cost.
   */
  readonly #countsUnder = new Map<string, number>()
  /** Read results (with their serialised bodies) valid until the next write. */
  readonly #memo = new Map<string, unknown>()
  readonly #now: () => number
  /**
   * How many TTLs after the last renew a session is invalidated. Consul runs the timer
   * for TTL x 2 (SessionTTLMultiplier); dev-consul defaults to 1, the earliest a real
   * server may, so a client that renews too late fails here first. 2 is Consul's own.
   */
  sessionTtlMultiplier = 1

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  // ---- reads -------------------------------------------------------------

  /** Index of the whole KV table, tombstones included (what a missing key reports). */
  get kvIndex(): number {
    return this.#kvIndex
  }

  get sessionsIndex(): number {
    return this.#sessionsIndex
  }

  getEntry(key: string): StoreEntry | undefined {
    return this.#entries.get(key)
  }

  /**
   * Entries under a plain string prefix, sorted by key, and the prefix's index: the
   * highest ModifyIndex of its entries and tombstones, or (`own: false`) the table
   * index when nothing was ever under the prefix.
   */
  list(prefix: string): { index: number; own: boolean; entries: StoreEntry[] } {
    const entries: StoreEntry[] = []
    let index = 0
    for (const e of this.#entries.values()) {
      if (e.key.startsWith(prefix)) {
        entries.push(e)
        if (e.modifyIndex > index) index = e.modifyIndex
      }
    }
    if (prefix === "") {
      index = this.#kvIndex
    } else {
      for (const [key, at] of this.#tombstones) if (at > index && key.startsWith(prefix)) index = at
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    const own = prefix !== "" && index !== 0
    return { index: index !== 0 ? index : this.#kvIndex, own, entries }
  }

  /** Whether some entry's key starts with `prefix`. */
  hasKeysUnder(prefix: string): boolean {
    let count = this.#countsUnder.get(prefix)
    if (count === undefined) {
      count = 0
      for (const key of this.#entries.keys()) if (key.startsWith(prefix)) count++
      this.#countsUnder.set(prefix, count)
    }
    return count > 0
  }

  #counted(key: string, delta: number): void {
    for (const [prefix, count] of this.#countsUnder) {
      if (key.startsWith(prefix)) this.#countsUnder.set(prefix, count + delta)
    }
  }

  lockDelayActive(key: string): boolean {
    const until = this.#lockDelays.get(key)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#lockDelays.delete(key)
    return false
  }

  getSession(id: string): Session | undefined {
    return this.#sessions.get(id)
  }

  listSessions(): Session[] {
    return [...this.#sessions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /**
   * `compute()` once per state: a thousand watchers woken by one write share one
   * listing and one JSON body. Any write clears it.
   */
  memo<T>(key: string, compute: () => T): T {
    if (this.#memo.has(key)) return this.#memo.get(key) as T
    const value = compute()
    this.#memo.set(key, value)
    return value
  }

  // ---- change notification ------------------------------------------------

  /** Calls `wake` at the next write that `interest` covers; returns the unsubscribe. */
  waitFor(interest: Interest, wake: () => void): () => void {
    const set = interest.kind === "sessions"
      ? this.#onSessions
      : interest.kind === "key"
      ? bucket(this.#byKey, interest.key)
      : bucket(this.#byPrefix, interest.prefix)
    set.add(wake)
    this.#waiters++
    return () => {
      if (!set.delete(wake)) return
      this.#waiters--
      if (set.size === 0 && interest.kind === "key") this.#byKey.delete(interest.key)
      else if (set.size === 0 && interest.kind === "prefix") this.#byPrefix.delete(interest.prefix)
    }
  }

  get listenerCount(): number {
    return this.#waiters
  }

  #emit(change: Change): void {
    this.#memo.clear()
    // Waiters unsubscribe themselves when woken; collect first, then wake.
    const woken: Array<Set<() => void>> = []
    if (change.sessions) woken.push(this.#onSessions)
    if (change.kvKeys.length > 0) {
      for (const key of change.kvKeys) {
        const set = this.#byKey.get(key)
        if (set !== undefined) woken.push(set)
      }
      for (const [prefix, set] of this.#byPrefix) {
        if (prefix === "" || change.kvKeys.some((k) => k.startsWith(prefix))) woken.push(set)
      }
    }
    for (const set of woken) for (const wake of Array.from(set)) wake()
  }

  // ---- KV writes ------------------------------------------------------------

  /**
   * Runs `body` as one transaction at the next index. If `body` returns `commit: false`
   * every change is undone; otherwise changed keys get that index and waiters are woken.
   */
  writeKv<T>(body: (tx: KvTxn) => { commit: boolean; result: T }): T {
    const tx = new KvTxn(this.#index + 1, this.#entries, this.#tombstones, this.#sessions)
    const { commit, result } = body(tx)
    if (!commit) {
      tx.rollback()
      return result
    }
    for (const [key, delta] of tx.createdMinusDeleted) if (delta !== 0) this.#counted(key, delta)
    if (tx.changedKeys.size > 0) {
      this.#index = tx.index
      this.#kvIndex = tx.index
      this.#emit({ kvKeys: [...tx.changedKeys], sessions: false })
    }
    return result
  }

  // ---- sessions ---------------------------------------------------------------

  createSession(spec: Omit<Session, "id" | "createIndex" | "modifyIndex">): Session {
    const index = ++this.#index
    const session: Session = { ...spec, id: randomUUID(), createIndex: index, modifyIndex: index }
    this.#sessions.set(session.id, session)
    this.#sessionsIndex = index
    this.#armTtl(session)
    this.#emit({ kvKeys: [], sessions: true })
    return session
  }

  /** Resets the TTL timer; undefined when the session does not exist. */
  renewSession(id: string): Session | undefined {
    const session = this.#sessions.get(id)
    if (session !== undefined) this.#armTtl(session)
    return session
  }

  /**
   * Destroys a session as Consul does on destroy or TTL expiry: in one index, held keys
   * are released (or deleted, for Behavior delete) and get a lock-delay.
   */
  destroySession(id: string): void {
    const session = this.#sessions.get(id)
    if (session === undefined) return
    const index = ++this.#index
    this.#sessions.delete(id)
    this.#sessionsIndex = index
    const timer = this.#sessionTimers.get(id)
    if (timer !== undefined) clearTimeout(timer)
    this.#sessionTimers.delete(id)

    const held = [...this.#entries.values()].filter((e) => e.session === id)
    const delayMs = Math.min(session.lockDelayNs / 1e6, MAX_LOCK_DELAY_MS)
    for (const e of held) {
      if (session.behavior === "delete") {
        this.#entries.delete(e.key)
        this.#counted(e.key, -1)
        this.#tombstones.set(e.key, index)
      } else {
        this.#entries.set(e.key, { ...e, session: undefined, modifyIndex: index })
      }
      if (delayMs > 0) this.#lockDelays.set(e.key, this.#now() + delayMs)
    }
    if (held.length > 0) this.#kvIndex = index
    this.#emit({ kvKeys: held.map((e) => e.key), sessions: true })
  }

  /**
   * Invalidates every session bound to `node`'s health (its NodeChecks include
   * serfHealth, the default), as Consul does when the node's agent fails or restarts.
   * Returns how many went.
   */
  failNode(node: string): number {
    const bound = [...this.#sessions.values()].filter((s) => s.node === node && s.nodeChecks.includes("serfHealth"))
    for (const s of bound) this.destroySession(s.id)
    return bound.length
  }

  /**
   * Forgets every tombstone, as Consul's reaper does once tombstone_gc_ttl has passed:
   * from now on a prefix whose newest change was a delete reports a lower index (or the
   * table's), so its index can go backwards. Watchers of the reaped keys are woken to see
   * it. Returns how many were reaped.
   */
  reapTombstones(): number {
    const reaped = [...this.#tombstones.keys()]
    this.#tombstones.clear()
    if (reaped.length > 0) this.#emit({ kvKeys: reaped, sessions: false })
    return reaped.length
  }

  #armTtl(session: Session): void {
    if (session.ttlMs <= 0) return
    const old = this.#sessionTimers.get(session.id)
    if (old !== undefined) clearTimeout(old)
    const timer = setTimeout(() => this.destroySession(session.id), session.ttlMs * this.sessionTtlMultiplier)
    timer.unref()
    this.#sessionTimers.set(session.id, timer)
  }

  /** Stops every timer; the store is unusable afterwards. */
  close(): void {
    for (const t of this.#sessionTimers.values()) clearTimeout(t)
    this.#sessionTimers.clear()
    this.#byKey.clear()
    this.#byPrefix.clear()
    this.#onSessions.clear()
    this.#waiters = 0
  }
}

const bucket = (map: Map<string, Set<() => void>>, name: string): Set<() => void> => {
  let set = map.get(name)
  if (set === undefined) map.set(name, set = new Set())
  return set
}

/** Outcome of a KV verb that may refuse without being an error (cas, lock, unlock). */
export type Applied = { ok: true; entry: StoreEntry | undefined } | { ok: false }

/** The KV verbs of Consul's state store, run inside one transaction at one index. */
export class KvTxn {
  readonly index: number
  readonly changedKeys = new Set<string>()
  /** Per key, +1 for a creation and -1 for a deletion in this transaction. */
  readonly createdMinusDeleted = new Map<string, number>()
  readonly #entries: Map<string, StoreEntry>
  readonly #tombstones: Map<string, number>
  readonly #sessions: ReadonlyMap<string, Session>
  readonly #undo: Array<() => void> = []

  constructor(
    index: number,
    entries: Map<string, StoreEntry>,
    tombstones: Map<string, number>,
    sessions: ReadonlyMap<string, Session>
  ) {
    this.index = index
    this.#entries = entries
    this.#tombstones = tombstones
    this.#sessions = sessions
  }

  get(key: string): StoreEntry | undefined {
    return this.#entries.get(key)
  }

  sessionExists(id: string): boolean {
    return this.#sessions.has(id)
  }

  list(prefix: string): StoreEntry[] {
    return [...this.#entries.values()]
      .filter((e) => e.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /**
   * Plain set: keeps the current holder; an identical entry is left untouched. LockIndex
   * becomes 0, as in Consul's kvsSetTxn, which stores the request's (zero) LockIndex.
   */
  set(key: string, value: Buffer | null, flags: bigint): StoreEntry {
    const existing = this.#entries.get(key)
    return this.#put({ key, value, flags, lockIndex: 0, session: existing?.session }, existing)
  }

  /** cas=0 creates only; cas=N writes only over ModifyIndex N. */
  cas(key: string, value: Buffer | null, flags: bigint, casIndex: bigint): Applied {
    const existing = this.#entries.get(key)
    if (
      casIndex === 0n
        ? existing !== undefined
        : existing === undefined || BigInt(existing.modifyIndex) !== casIndex
    ) {
      return { ok: false }
    }
    return { ok: true, entry: this.set(key, value, flags) }
  }

  /** Caller checks the session exists (Consul errors otherwise) and any lock-delay. */
  lock(key: string, value: Buffer | null, flags: bigint, session: string): Applied {
    const existing = this.#entries.get(key)
    let lockIndex = 1
    if (existing !== undefined) {
      if (existing.session === session) lockIndex = existing.lockIndex
      else if (existing.session !== undefined) return { ok: false }
      else lockIndex = existing.lockIndex + 1
    }
    return { ok: true, entry: this.#put({ key, value, flags, lockIndex, session }, existing) }
  }

  unlock(key: string, value: Buffer | null, flags: bigint, session: string): Applied {
    const existing = this.#entries.get(key)
    if (existing === undefined || existing.session !== session) return { ok: false }
    return {
      ok: true,
      entry: this.#put({ key, value, flags, lockIndex: existing.lockIndex, session: undefined }, existing)
    }
  }

  delete(key: string): void {
    const existing = this.#entries.get(key)
    if (existing === undefined) return
    const oldTomb = this.#tombstones.get(key)
    this.#entries.delete(key)
    this.#tombstones.set(key, this.index)
    this.changedKeys.add(key)
    this.createdMinusDeleted.set(key, (this.createdMinusDeleted.get(key) ?? 0) - 1)
    this.#undo.push(() => {
      this.#entries.set(key, existing)
      if (oldTomb === undefined) this.#tombstones.delete(key)
      else this.#tombstones.set(key, oldTomb)
    })
  }

  /** Deletes only over ModifyIndex N; true also when the key is absent, as in Consul. */
  deleteCas(key: string, casIndex: bigint): boolean {
    const existing = this.#entries.get(key)
    if (existing === undefined) return true
    if (BigInt(existing.modifyIndex) !== casIndex) return false
    this.delete(key)
    return true
  }

  deleteTree(prefix: string): void {
    for (const e of this.list(prefix)) this.delete(e.key)
  }

  rollback(): void {
    for (const undo of this.#undo.reverse()) undo()
    this.#undo.length = 0
    this.changedKeys.clear()
    this.createdMinusDeleted.clear()
  }

  #put(
    next: Pick<StoreEntry, "key" | "value" | "flags" | "lockIndex" | "session">,
    existing: StoreEntry | undefined
  ): StoreEntry {
    if (existing !== undefined && sameContent(existing, next)) return existing
    const entry: StoreEntry = {
      ...next,
      createIndex: existing?.createIndex ?? this.index,
      modifyIndex: this.index
    }
    this.#entries.set(entry.key, entry)
    this.changedKeys.add(entry.key)
    if (existing === undefined)
      this.createdMinusDeleted.set(entry.key, (this.createdMinusDeleted.get(entry.key) ?? 0) + 1)
    this.#undo.push(() => {
      if (existing === undefined) this.#entries.delete(entry.key)
      else this.#entries.set(entry.key, existing)
    })
    return entry
  }
}

function sameContent(a: Pick<StoreEntry, "key" | "value" | "flags" | "lockIndex" | "session">, b: typeof a): boolean {
  const av = a.value ?? Buffer.alloc(0)
  const bv = b.value ?? Buffer.alloc(0)
  return a.key === b.key && a.flags === b.flags && a.lockIndex === b.lockIndex && a.session === b.session &&
    av.equals(bv)
}
