import { HttpError } from "./errors.ts";

/**
 * Read a JSON body of at most `maxBytes`, refusing larger bodies with 413
 * before they are buffered whole (Content-Length is checked first, the stream
 * is counted for chunked bodies).
 */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().includes("application/json")) {
    throw new HttpError(415, "unsupported_media_type", "send the body as application/json");
  }
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > maxBytes) throw tooLarge(maxBytes, declared);
  if (!request.body) throw new HttpError(400, "empty_body", "the request has no body");
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes, size);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  let text: string;
  try {
    // Fatal: a lenient decoder turns invalid bytes into U+FFFD, and the mangled text would be stored as if sent.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_utf8", "the body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "invalid_json", "the body is not valid JSON");
  }
}

function tooLarge(maxBytes: number, size: number): HttpError {
  return new HttpError(413, "body_too_large", `bodies are limited to ${maxBytes} bytes`, { maxBytes, size });
}
