/**
 * An R2 bucket in memory with the calls the CLIs and the lake reader make:
 * get (whole, or a byte range, refused when it does not lie inside the object,
 * as R2 refuses it), head, put, and list with a prefix and cursors (pages of
 * `listPage` keys, so a test can make the importer page).
 */
import type { DataBucket, DataObject } from "../../scripts/data-bucket.ts";

export class MemoryBucket implements DataBucket {
  readonly objects = new Map<string, Uint8Array>();

  constructor(private readonly listPage = 1_000) {}

  async get(key: string, options?: { range: { offset: number; length: number } }): Promise<DataObject | null> {
    const whole = this.objects.get(key);
    if (!whole) return null;
    let bytes = whole;
    if (options?.range) {
      const { offset, length } = options.range;
      if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 && offset + length <= whole.byteLength)) {
        throw new RangeError(`range ${offset}+${length} is not inside ${key} (${whole.byteLength} bytes)`);
      }
      bytes = whole.subarray(offset, offset + length);
    }
    return { arrayBuffer: async () => bytes.slice().buffer as ArrayBuffer, text: async () => new TextDecoder().decode(bytes) };
  }

  async head(key: string): Promise<{ size: number } | null> {
    const bytes = this.objects.get(key);
    return bytes ? { size: bytes.byteLength } : null;
  }

  async put(key: string, value: Uint8Array | string): Promise<void> {
    this.objects.set(key, typeof value === "string" ? new TextEncoder().encode(value) : value.slice());
  }

  async list(options: { prefix?: string; cursor?: string } = {}): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(options.prefix ?? "")).sort();
    const from = Number(options.cursor ?? "0");
    const page = keys.slice(from, from + this.listPage);
    const truncated = from + this.listPage < keys.length;
    return { objects: page.map((key) => ({ key })), truncated, ...(truncated ? { cursor: String(from + this.listPage) } : {}) };
  }
}
