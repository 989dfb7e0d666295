/**
 * What a node watches in Consul: only the desired state of the apps it serves, never
 * another node's status. Whatever other nodes write, a node's watches stay asleep;
 * its cost to Consul follows the work it is given, not the size of the fleet (the
 * arithmetic is in docs/decisions.md, "What a node watches").
 *
 * - Apps are discovered by a keys-only listing of `sacar/` with separator `/` (one
 *   name per app, never a value), on start and then every `discoverEvery`. A listing
 *   cannot be a blocking query here: its index moves with every write under `sacar/`.
 * - Each app's `config` is watched (one blocking query on one key that exists): the
 *   node must know whether its `nodes` name it.
 * - For an app whose config names this node (or does not decode: the node reports the
 *   error), two more blocking queries: `releases/` (prefix) and `deploy` (key). The
 *   node's own status is read once, when the app is taken up: afterwards this node is
 *   its only writer and holds it in memory.
 * - Not watched: `lock` matters only while a deploy is about to run here, so the deploy
 *   reads it fresh before its pre-deploy and again under its slot, and blocks on it
 *   only while it is frozen (deploy.ts). Watching it in every served app cost one
 *   connection per app for a key that is nearly always missing: 201 connections for
 *   a node in 50 apps, over a Consul agent's default `http_max_conns_per_client`.
 *   `pin` only pauses the controller's auto-deploy; nothing on a node reads it.
 *
 * The entries are handed to `readSnapshot` exactly as the whole-prefix watch used to
 * hand them over. An app whose watches have not all answered yet is left out, so a
 * plan never sees a served app without its releases (it would remove them from disk).
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Consul } from "../consul/consul.ts"
import type { KvEntry } from "../consul/consul.ts"
import { watchKey, watchPrefix } from "../consul/watch.ts"
import type { WatchOptions } from "../consul/watch.ts"
import { decodeDocument } from "../spec/decode.ts"
import { AppConfig } from "../spec/documents.ts"
import { matchesAny } from "../spec/glob.ts"
import type { Keys } from "../spec/keys.ts"
import { isAppName } from "../spec/names.ts"

export interface DesiredWatchOptions {
  readonly keys: Keys
  readonly node: string
  /** Called after every change (and after the first complete view). Must not block. */
  readonly changed: Effect.Effect<void>
  /** How often new apps are looked for; default 10 s. */
  readonly discoverEveryMs?: number
  readonly watch?: WatchOptions
}

export interface DesiredWatch {
  /** Every desired entry known now; undefined until the first discovery has answered. */
  readonly entries: Effect.Effect<ReadonlyArray<KvEntry> | undefined>
}

const DISCOVER_EVERY_MS = 10_000

/** Not yet answered, so the app's view is incomplete. */
const UNSEEN = Symbol("unseen")
type Seen<A> = A | typeof UNSEEN

interface ServedWatches {
  readonly fibers: Array<Fiber.Fiber<void>>
  releases: Seen<ReadonlyArray<KvEntry>>
  deploy: Seen<KvEntry | undefined>
  ownStatus: Seen<KvEntry | undefined>
}

interface AppWatch {
  configFiber: Fiber.Fiber<void> | undefined
  config: Seen<KvEntry | undefined>
  served: ServedWatches | undefined
}

/** Whether the node takes the app up: its config names it, or does not decode (the node then reports why). */
const interested = (node: string, config: KvEntry | undefined): boolean => {
  if (config === undefined) return false
  const decoded = decodeDocument(AppConfig, "AppConfig", config.key, config.value)
  return Result.isFailure(decoded) || matchesAny(node, decoded.success.nodes)
}

export const watchDesired = (
  options: DesiredWatchOptions
): Effect.Effect<DesiredWatch, never, Consul | Scope.Scope> =>
  Effect.gen(function*() {
    const { keys, node, changed } = options
    const consul = yield* Consul
    const scope = yield* Effect.scope
    const apps = new Map<string, AppWatch>()
    let discovered = false

    const follow = <A>(stream: Stream.Stream<A, never, Consul>, onValue: (value: A) => void) =>
      stream.pipe(
        Stream.runForEach((value) => Effect.sync(() => onValue(value)).pipe(Effect.andThen(changed))),
        Effect.provideService(Consul, consul),
        Effect.forkIn(scope)
      )

    const startServed = (app: string) =>
      Effect.gen(function*() {
        const served: ServedWatches = {
          fibers: [],
          releases: UNSEEN,
          deploy: UNSEEN,
          ownStatus: UNSEEN
        }
        served.fibers.push(
          yield* follow(watchPrefix(keys.releases(app), options.watch), (r) => served.releases = r.value),
          yield* follow(watchKey(keys.deploy(app), options.watch), (r) => served.deploy = r.value),
          // Read once: where a restarted node resumes. Retried like any read until it answers.
          yield* follow(
            Stream.fromEffect(
              consul.get(keys.status(app, node)).pipe(
                Effect.tapError((e) => Effect.logWarning(`cannot read ${keys.status(app, node)}: ${e.message}`)),
                Effect.retry(Schedule.spaced("1 second")),
                Effect.orDie
              )
            ),
            (r) => served.ownStatus = r.value
          )
        )
        return served
      })

    const onConfig = (app: string, watch: AppWatch, config: KvEntry | undefined) =>
      Effect.gen(function*() {
        watch.config = config
        const wanted = interested(node, config)
        if (wanted && watch.served === undefined) watch.served = yield* startServed(app)
        if (!wanted && watch.served !== undefined) {
          const fibers = watch.served.fibers
          watch.served = undefined
          yield* Fiber.interruptAll(fibers)
        }
      })

    const startApp = (app: string) =>
      Effect.gen(function*() {
        const watch: AppWatch = { configFiber: undefined, config: UNSEEN, served: undefined }
        apps.set(app, watch)
        watch.configFiber = yield* watchKey(keys.config(app), options.watch).pipe(
          Stream.runForEach((r) => onConfig(app, watch, r.value).pipe(Effect.andThen(changed))),
          Effect.provideService(Consul, consul),
          Effect.forkIn(scope)
        )
      })

    const stopApp = (app: string, watch: AppWatch) =>
      Effect.gen(function*() {
        apps.delete(app)
        if (watch.configFiber !== undefined) yield* Fiber.interrupt(watch.configFiber)
        if (watch.served !== undefined) yield* Fiber.interruptAll(watch.served.fibers)
      })

    const discover = Effect.gen(function*() {
      const listed = yield* consul.keys(keys.root, "/")
      const names = new Set<string>()
      for (const key of listed) {
        const name = key.slice(keys.root.length).replace(/\/$/, "")
        if (key.endsWith("/") && isAppName(name)) names.add(name)
      }
      for (const name of names) if (!apps.has(name)) yield* startApp(name)
      // An app whose folder is gone entirely: its config watch has already said so.
      for (const [name, watch] of apps) if (!names.has(name) && watch.config === undefined) yield* stopApp(name, watch)
      if (!discovered) {
        discovered = true
        yield* changed
      }
    }).pipe(
      Effect.catch((error) => Effect.logWarning(`cannot list the apps under ${keys.root}: ${error.message}`))
    )

    const discoverEveryMs = options.discoverEveryMs ?? DISCOVER_EVERY_MS
    // Until the first listing answers, try again each second: nothing is served before.
    yield* Effect.forkIn(
      Effect.forever(
        discover.pipe(Effect.andThen(Effect.suspend(() => Effect.sleep(discovered ? discoverEveryMs : 1_000))))
      ),
      scope
    )

    const entries = Effect.sync((): ReadonlyArray<KvEntry> | undefined => {
      if (!discovered) return undefined
      const out: KvEntry[] = []
      for (const watch of apps.values()) {
        if (watch.config === UNSEEN || watch.config === undefined) continue
        const served = watch.served
        if (served === undefined) {
          out.push(watch.config)
          continue
        }
        if (served.releases === UNSEEN || served.deploy === UNSEEN || served.ownStatus === UNSEEN) continue
        out.push(watch.config, ...served.releases)
        if (served.deploy !== undefined) out.push(served.deploy)
        if (served.ownStatus !== undefined) out.push(served.ownStatus)
      }
      return out
    })
    return { entries }
  })
