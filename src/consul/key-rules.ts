/**
 * The keys Consul 1.21.6+ refuses with a 400 (hashicorp/consul#22931, CVE-2025-11392;
 * agents with `disable_kv_key_validation` accept them): a `../` path traversal, a
 * leading `/`, leading or trailing white space. One rule for dev-consul, which refuses
 * them when asked to, and for the client, which names the offending key when Consul
 * refuses one.
 */
export const keyRefusal = (key: string): string | undefined =>
  key.includes("../")
    ? "contains a \"../\" path traversal"
    : key.startsWith("/")
    ? "begins with \"/\""
    : key !== key.trim()
    ? "has leading or trailing white space"
    : undefined
