/** Small DOM helpers and formatting shared by the dashboard's views. */
import { ApiError } from "../sdk/index.ts";

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`dashboard: no #${id}`);
  return el as T;
}

/** An element with text content and attributes; children appended in order. */
export function h(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

export function row(cells: (Node | string)[], attrs: Record<string, string> = {}): HTMLTableRowElement {
  return h("tr", attrs, ...cells.map((c) => h("td", {}, c))) as HTMLTableRowElement;
}

/** Label, a gauge of `value` against `limit` (red past it) and a caption: three cells of a `.bars` grid. */
export function bar(label: string, value: number, limit: number, text: string): HTMLElement[] {
  const frac = limit > 0 ? Math.min(1, Math.max(0, value / limit)) : value > 0 ? 1 : 0;
  return [h("span", {}, label), h("div", { class: `bar${value > limit ? " over" : ""}` }, h("i", { style: `width:${(frac * 100).toFixed(1)}%` })), h("span", {}, text)];
}

export function time(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function money(n: number | null | undefined, currency = ""): string {
  if (n === null || n === undefined) return "-";
  return `${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}${currency ? ` ${currency}` : ""}`;
}

export function signed(n: number | null | undefined, currency = ""): HTMLElement {
  const text = money(n, currency);
  return h("span", { class: n === null || n === undefined || n === 0 ? "" : n > 0 ? "up" : "down" }, n !== null && n !== undefined && n > 0 ? `+${text}` : text);
}

export function pipSize(pair: string): number {
  return pair.endsWith("_JPY") ? 0.01 : 0.0001;
}

export function precision(pair: string): number {
  return pair.endsWith("_JPY") ? 3 : 5;
}

/** Errors by source (a poll, the room, an action): the banner shows every current one. */
const errors = new Map<string, string>();

/** A 400's `details` ([{ path, message }], what the schema refused and where), else []. */
export function errorDetails(err: unknown): { path: string; message: string }[] {
  if (!(err instanceof ApiError) || !Array.isArray(err.details)) return [];
  return err.details.flatMap((d: unknown) => {
    const item = d as { path?: unknown; message?: unknown } | null;
    return item && typeof item.message === "string" ? [{ path: typeof item.path === "string" ? item.path : "", message: item.message }] : [];
  });
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return `the API key was refused (${err.code})`;
    if (err.status === 403) return `this key may not do that (${err.code})`;
    if (err.status === 429) return "too many requests: rate limited, retrying";
    // What the schema refused, readably: "path: message; path: message".
    const details = errorDetails(err).map((d) => (d.path ? `${d.path}: ${d.message}` : d.message));
    return `${err.code}: ${err.message.replace(/^\d+ [a-z_]+: /, "")}${details.length ? ` (${details.join("; ")})` : ""}`;
  }
  if (err instanceof TypeError) return "the runtime is unreachable (network error); retrying";
  return String(err instanceof Error ? err.message : err);
}

export function setError(source: string, err: unknown): void {
  if (err === null) errors.delete(source);
  else errors.set(source, describeError(err));
  const banner = $("banner");
  banner.replaceChildren(...[...errors.values()].map((m) => h("div", {}, m)));
  banner.hidden = errors.size === 0;
}

/**
 * Ask before a dangerous action in the page's one modal dialog (#confirm): `text`, the confirm
 * button's label, and a free-text reason when `reason` is set. Keyboard: the dialog takes the
 * focus, Escape or Cancel refuse. Resolves with the reason ("" without one), or null if refused.
 */
export async function confirmAction(text: string, ok: string, options: { reason?: boolean } = {}): Promise<string | null> {
  const dialog = $<HTMLDialogElement>("confirm");
  $("confirm-text").textContent = text;
  const reason = $<HTMLInputElement>("confirm-reason");
  reason.value = "";
  (reason.closest("label") ?? reason).hidden = options.reason !== true;
  $("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise<void>((resolve) => dialog.addEventListener("close", () => resolve(), { once: true }));
  return dialog.returnValue === "ok" ? reason.value.trim() : null;
}
