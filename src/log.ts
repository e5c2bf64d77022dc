/**
 * Structured logs: one JSON object per line, `event` first, so Workers Logs
 * (and `wrangler tail`) can filter on fields instead of parsing text.
 */
export function logEvent(level: "info" | "warn" | "error", event: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ event, level, time: new Date().toISOString(), ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
