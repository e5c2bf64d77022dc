import { logEvent } from "../log.ts";
import type { ErrorBody } from "../../schemas/common.ts";

/** An error that becomes a JSON response of the one shared shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export function errorResponse(status: number, code: string, message: string, details?: unknown, headers?: HeadersInit): Response {
  const body: ErrorBody = { error: { code, message, ...(details !== undefined ? { details } : {}) } };
  return Response.json(body, { status, ...(headers ? { headers } : {}) });
}

export function toErrorResponse(err: unknown): Response {
  if (err instanceof HttpError) return errorResponse(err.status, err.code, err.message, err.details, err.headers);
  logEvent("error", "http.unhandled_error", { error: String(err), stack: err instanceof Error ? err.stack : undefined });
  return errorResponse(500, "internal_error", "the request could not be completed");
}
