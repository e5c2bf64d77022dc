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

export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return `the API key was refused (${err.code})`;
    if (err.status === 403) return `this key may not do that (${err.code})`;
    if (err.status === 429) return "too many requests: rate limited, retrying";
    return `${err.code}: ${err.message.replace(/^\d+ [a-z_]+: /, "")}`;
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
