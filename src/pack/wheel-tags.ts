// Reads the compatibility tags out of a wheel's file name (PEP 427 / PEP 425).

export interface WheelTags {
  readonly file: string
  /** every python-abi-platform triple the name expands to */
  readonly tags: ReadonlyArray<string>
  readonly platforms: ReadonlyArray<string>
}

/** `name-version[-build]-py-abi-platform.whl`; each tag part may be a `.`-separated set. */
export function parseWheelName(file: string): WheelTags | undefined {
  if (!file.endsWith(".whl")) return undefined
  const parts = file.slice(0, -4).split("-")
  if (parts.length !== 5 && parts.length !== 6) return undefined
  const [py = "", abi = "", plat = ""] = parts.slice(-3)
  const platforms = plat.split(".")
  const tags: string[] = []
  for (const p of py.split(".")) for (const a of abi.split(".")) for (const x of platforms) tags.push(`${p}-${a}-${x}`)
  return { file, tags, platforms }
}

/** Nomad clients that run Sacar's reconciler are Linux machines. */
const LINUX = /^(linux|manylinux|musllinux)_/

/**
 * A wheel built for a platform (not `any`) installs only where that platform matches.
 * pip only picks wheels the building interpreter accepts, so the risk is a build on a
 * machine unlike the nodes (a laptop, another libc): say so while it is cheap to fix.
 * `accepted` is the building interpreter's tag list (empty when unknown).
 */
export function platformMismatch(
  file: string,
  accepted: ReadonlyArray<string>,
  pythonVersion: string
): string | undefined {
  const wheel = parseWheelName(file)
  if (wheel === undefined) return `${file}: not a wheel file name (name-version-python-abi-platform.whl)`
  const specific = wheel.platforms.filter((p) => p !== "any")
  if (specific.length === 0) return undefined
  if (!specific.some((p) => LINUX.test(p))) {
    return `${file} is built for ${
      specific.join(", ")
    }, not Linux: the nodes cannot install it; build the tarball on Linux`
  }
  if (accepted.length === 0) return undefined
  const set = new Set(accepted)
  if (wheel.tags.some((t) => set.has(t))) return undefined
  return `${file} is built for ${
    specific.join(", ")
  } and does not match Python ${pythonVersion} on this machine; nodes unlike it cannot install it`
}
