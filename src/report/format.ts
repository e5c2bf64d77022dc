/**
 * Text formatting for the report page. Everything is hand-rolled rather than
 * toLocaleString/Intl so the page is byte-identical on any machine (ICU data
 * and the default locale differ between Node builds).
 */

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for both element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>` and `&` as
 * \u escapes so no value can close the element or open a comment, and the two
 * line separators JSON allows but older JS parsers did not.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** "1234567" -> "1,234,567" (digits only). */
function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Integer hundredths -> "-1,234.56" (sign only when negative). */
function hundredths(value: number): string {
  const abs = Math.abs(value);
  const whole = Math.floor(abs / 100);
  const frac = String(abs % 100).padStart(2, "0");
  return `${value < 0 ? "-" : ""}${groupThousands(String(whole))}.${frac}`;
}

/** Integer USD cents -> "$1,234.56" / "-$1,234.56". */
export function formatAccountCents(cents: number): string {
  const c = Math.round(cents);
  return c < 0 ? `-$${hundredths(-c)}` : `$${hundredths(c)}`;
}

/** Integer quote micros -> "1,234.57 JPY", rounded to the hundredth, halves away from zero. */
export function formatQuoteMicros(micros: number, currency: string): string {
  const h = Math.sign(micros) * Math.round(Math.abs(micros) / 10_000);
  return `${hundredths(h)} ${currency}`;
}

/** A float with fixed decimals and thousands groups; "n/a" for null. */
export function formatNumber(value: number | null, decimals: number): string {
  if (value === null || !Number.isFinite(value)) return "n/a";
  const fixed = value.toFixed(decimals);
  const [intPart = "", frac] = fixed.split(".");
  const neg = intPart.startsWith("-");
  const digits = neg ? intPart.slice(1) : intPart;
  // toFixed can give "-0.00"; a minus on zero only confuses.
  const sign = neg && /[1-9]/.test(fixed) ? "-" : "";
  return `${sign}${groupThousands(digits)}${frac === undefined ? "" : `.${frac}`}`;
}

/** Percent value (already x100) -> "12.34 %"; "n/a" for null. */
export function formatPct(value: number | null, decimals = 2): string {
  return value === null ? "n/a" : `${formatNumber(value, decimals)} %`;
}

/** A 0..1 ratio as a percent. */
export function formatRatioPct(ratio: number, decimals = 1): string {
  return formatPct(ratio * 100, decimals);
}

/** Epoch ms -> "2024-01-02 09:00" (UTC; the page says so once in its header). */
export function formatUtcMinute(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

/** Epoch ms -> "2024-01-02". */
export function formatUtcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const DAY_MS = 86_400_000;

/** A duration in ms -> "12.3 days". */
export function formatDays(ms: number): string {
  return `${formatNumber(ms / DAY_MS, 1)} days`;
}

/** "EUR_USD" / "EUR/USD" / "EURUSD" -> "USD"; whatever follows the separator otherwise. */
export function quoteCurrency(pair: string): string {
  const parts = pair.split(/[_/]/);
  if (parts.length === 2 && parts[1]) return parts[1];
  return pair.length === 6 ? pair.slice(3) : "quote";
}
