/**
 * A Consul service for a test of one piece of code that talks to Consul: the operations
 * the test gives, and every other one dies saying the code under test was not expected
 * to call it. The one list of the service's operations in test/, so an operation added
 * to the service is added here once.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Consul } from "../../src/consul/consul.ts"

type ConsulService = Parameters<typeof Consul.of>[0]

/** `user` names the code under test, as the death of an unexpected call says it. */
export const consulStandIn = (user: string, given: Partial<ConsulService>): Layer.Layer<Consul> => {
  const unused = () => Effect.die(`not used by ${user}`)
  return Layer.succeed(
    Consul,
    Consul.of({
      address: "fake",
      get: unused,
      list: unused,
      keys: unused,
      listKeys: unused,
      put: unused,
      delete: unused,
      txn: unused,
      createSession: unused,
      renewSession: unused,
      destroySession: unused,
      sessionInfo: unused,
      leader: unused,
      agentNode: unused,
      ...given
    })
  )
}
