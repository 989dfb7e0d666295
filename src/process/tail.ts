/**
 * The last bytes of a process's output. Build tools can print megabytes; a person
 * reading a failed release only needs the end, and memory must stay bounded however
 * chatty the child is.
 */
export const DEFAULT_TAIL_BYTES = 4096

export class TailBuffer {
  readonly capacity: number
  readonly #buffer: Buffer
  #start = 0
  #length = 0

  constructor(capacity: number = DEFAULT_TAIL_BYTES) {
    this.capacity = capacity
    this.#buffer = Buffer.alloc(capacity)
  }

  write(chunk: Uint8Array): void {
    const cap = this.capacity
    if (cap === 0) return
    // Only the chunk's last `cap` bytes can survive.
    const data = chunk.length > cap ? chunk.subarray(chunk.length - cap) : chunk
    for (let offset = 0; offset < data.length;) {
      const writeAt = (this.#start + this.#length) % cap
      const room = Math.min(data.length - offset, cap - writeAt)
      this.#buffer.set(data.subarray(offset, offset + room), writeAt)
      offset += room
      const overflow = this.#length + room - cap
      if (overflow > 0) {
        this.#start = (this.#start + overflow) % cap
        this.#length = cap
      } else {
        this.#length += room
      }
    }
  }

  /** The kept bytes as text; a multi-byte character cut at the front is dropped. */
  toString(): string {
    const end = this.#start + this.#length
    const bytes = end <= this.capacity
      ? this.#buffer.subarray(this.#start, end)
      : Buffer.concat([this.#buffer.subarray(this.#start), this.#buffer.subarray(0, end - this.capacity)])
    let from = 0
    // Skip UTF-8 continuation bytes left over from a character whose start was overwritten.
    while (from < bytes.length && from < 4 && (bytes[from]! & 0xc0) === 0x80) from++
    return bytes.subarray(from).toString("utf8")
  }
}

/** Keep only the last `max` bytes of a text (for messages built from several tails). */
export const lastBytes = (text: string, max: number = DEFAULT_TAIL_BYTES): string => {
  const tail = new TailBuffer(max)
  tail.write(Buffer.from(text, "utf8"))
  return tail.toString()
}
