/** file:// bodies (and the node's cached artifacts), opened before the caller prepares anything for them. */
import { once } from "node:events"
import { createReadStream } from "node:fs"
import type { Readable } from "node:stream"

/** Resolves once the file is open, so a missing file fails here, not half-way through a transfer. */
export const openFile = async (path: string, signal: AbortSignal): Promise<Readable> => {
  const stream = createReadStream(path, { signal })
  await once(stream, "open", { signal })
  return stream
}
