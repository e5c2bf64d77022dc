/**
 * History input files: `.csv`, `.csv.gz` (read-lines.ts) and `.zip` as
 * histdata.com ships them (one `.csv`, sometimes a `.txt` gap report). Node
 * only. The zip reader is minimal on purpose: it reads the central directory
 * (so sizes are right even when the entry used a data descriptor), then
 * streams the one `.csv` entry through node:zlib's raw inflate, checking
 * length and CRC-32 at the end. Stored and deflated entries are supported;
 * encrypted, ZIP64 and multi-disk archives are refused with a clear error.
 */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import zlib from "node:zlib";
import { readLines, streamLines } from "./read-lines.ts";

export class ZipError extends Error {}

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;
const EOCD_MIN = 22;
const COMMENT_MAX = 0xffff;

async function readAt(fd: Awaited<ReturnType<typeof open>>, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fd.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

/** Every entry of the central directory, in order. Throws ZipError for an unreadable or unsupported archive. */
export async function listZipEntries(file: string): Promise<ZipEntry[]> {
  const fd = await open(file, "r");
  try {
    const size = (await fd.stat()).size;
    if (size < EOCD_MIN) throw new ZipError(`${file}: not a zip archive (too short)`);
    const tailLen = Math.min(size, EOCD_MIN + COMMENT_MAX);
    const tail = await readAt(fd, size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tail.length - EOCD_MIN; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG && i + EOCD_MIN + tail.readUInt16LE(i + 20) === tail.length) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ZipError(`${file}: not a zip archive (no end-of-central-directory record)`);
    const disk = tail.readUInt16LE(eocd + 4);
    const cdDisk = tail.readUInt16LE(eocd + 6);
    const count = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    if (disk !== 0 || cdDisk !== 0) throw new ZipError(`${file}: multi-disk zip archives are not supported`);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw new ZipError(`${file}: ZIP64 archives are not supported; unzip it and import the .csv`);
    if (cdOffset + cdSize > size) throw new ZipError(`${file}: truncated zip archive (central directory past the end)`);
    const cd = await readAt(fd, cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (at + 46 > cd.length || cd.readUInt32LE(at) !== CDH_SIG) throw new ZipError(`${file}: corrupt zip central directory (entry ${i})`);
      const nameLen = cd.readUInt16LE(at + 28);
      const extraLen = cd.readUInt16LE(at + 30);
      const commentLen = cd.readUInt16LE(at + 32);
      const entry: ZipEntry = {
        flags: cd.readUInt16LE(at + 8),
        method: cd.readUInt16LE(at + 10),
        crc32: cd.readUInt32LE(at + 16),
        compressedSize: cd.readUInt32LE(at + 20),
        uncompressedSize: cd.readUInt32LE(at + 24),
        localHeaderOffset: cd.readUInt32LE(at + 42),
        name: cd.toString("utf8", at + 46, at + 46 + nameLen),
      };
      if (entry.compressedSize === 0xffffffff || entry.uncompressedSize === 0xffffffff || entry.localHeaderOffset === 0xffffffff) {
        throw new ZipError(`${file}: entry ${entry.name} is ZIP64 (over 4 GB), not supported; unzip it and import the .csv`);
      }
      entries.push(entry);
      at += 46 + nameLen + extraLen + commentLen;
    }
    return entries;
  } finally {
    await fd.close();
  }
}

function isCsvEntry(e: ZipEntry): boolean {
  const base = e.name.split("/").pop() ?? "";
  // Skip folders and macOS resource forks (__MACOSX/._name.csv).
  return !e.name.endsWith("/") && !e.name.startsWith("__MACOSX/") && !base.startsWith("._") && base.toLowerCase().endsWith(".csv");
}

/** The single `.csv` entry of a zip (a `.txt` gap report or other files are ignored). Throws ZipError if there is none or several. */
export async function findCsvEntry(file: string): Promise<ZipEntry> {
  const entries = await listZipEntries(file);
  const csv = entries.filter(isCsvEntry);
  const names = entries.map((e) => e.name).join(", ") || "none";
  if (csv.length === 0) throw new ZipError(`${file}: no .csv entry in the zip (entries: ${names})`);
  if (csv.length > 1) throw new ZipError(`${file}: ${csv.length} .csv entries in the zip (${csv.map((e) => e.name).join(", ")}); expected exactly one`);
  const entry = csv[0] as ZipEntry;
  if (entry.flags & 0x1) throw new ZipError(`${file}: ${entry.name} is encrypted`);
  if (entry.method !== 0 && entry.method !== 8) throw new ZipError(`${file}: ${entry.name} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  return entry;
}

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** CRC-32 (zip's), continuing from `crc`; node:zlib's when available (Node >= 20.15), else a table. */
export function crc32(data: Uint8Array, crc = 0): number {
  const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (native) return native(data, crc);
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = (CRC_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

/** Passes bytes through, checking length and CRC-32 against the central directory at the end. */
function verifier(file: string, entry: ZipEntry): Transform {
  let crc = 0;
  let length = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      crc = crc32(chunk, crc);
      length += chunk.length;
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      if (length !== entry.uncompressedSize) done(new ZipError(`${file}: ${entry.name} inflated to ${length} bytes, the zip says ${entry.uncompressedSize}`));
      else if (crc >>> 0 !== entry.crc32) done(new ZipError(`${file}: ${entry.name} fails its CRC-32 check (corrupt archive)`));
      else done();
    },
  });
}

/** A stream of the bytes of a zip's single `.csv` entry. */
export async function openZipCsv(file: string): Promise<{ entry: ZipEntry; stream: Readable }> {
  const entry = await findCsvEntry(file);
  const fd = await open(file, "r");
  let header: Buffer;
  try {
    header = await readAt(fd, entry.localHeaderOffset, 30);
  } finally {
    await fd.close();
  }
  if (header.length < 30 || header.readUInt32LE(0) !== LFH_SIG) throw new ZipError(`${file}: corrupt zip (no local header for ${entry.name})`);
  const dataStart = entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (entry.compressedSize === 0) return { entry, stream: pipeline(Readable.from([]), verifier(file, entry), () => {}) };
  const raw = createReadStream(file, { start: dataStart, end: dataStart + entry.compressedSize - 1 });
  const stream =
    entry.method === 8
      ? pipeline(raw, zlib.createInflateRaw(), verifier(file, entry), () => {})
      : pipeline(raw, verifier(file, entry), () => {});
  return { entry, stream };
}

/** Lines of a zip's single `.csv` entry (BOM dropped), streamed. */
export async function* readZipCsvLines(file: string): AsyncGenerator<string, void, undefined> {
  const { stream } = await openZipCsv(file);
  yield* streamLines(stream);
}

/** Lines of a history file: `.zip` (its one .csv), `.gz` or plain text. */
export function readInputLines(file: string): AsyncGenerator<string, void, undefined> {
  return file.toLowerCase().endsWith(".zip") ? readZipCsvLines(file) : readLines(file);
}
