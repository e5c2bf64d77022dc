/**
 * Stream the lines of a history file, plain `.csv` or gzip `.csv.gz`, without
 * loading it: the real files run to millions of rows. Node only. Errors from
 * the file or from gunzip (truncated archive) reject the iteration.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { pipeline, type Readable } from "node:stream";
import { createGunzip } from "node:zlib";

export function readLines(file: string): AsyncGenerator<string, void, undefined> {
  const source = createReadStream(file);
  // pipeline (not .pipe) so a read or gunzip error destroys the chain and reaches readline.
  const input: Readable = file.endsWith(".gz") ? pipeline(source, createGunzip(), () => {}) : source;
  return streamLines(input, source);
}

/** Lines of a text stream (a UTF-8 BOM dropped); `source` is destroyed when the iteration ends. */
export async function* streamLines(input: Readable, source: Readable = input): AsyncGenerator<string, void, undefined> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let first = true;
  try {
    for await (const line of lines) {
      // Drop a UTF-8 byte order mark: it would make the first row unparsable.
      yield first && line.charCodeAt(0) === 0xfeff ? line.slice(1) : line;
      first = false;
    }
  } finally {
    lines.close();
    source.destroy();
  }
}
