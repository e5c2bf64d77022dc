/**
 * A progress bar for long CLI commands, on stderr so stdout stays clean for
 * results. On a terminal it redraws one line; in a pipe or CI log it prints a
 * line per 10% instead of thousands of carriage returns. Fits 80 columns.
 */
export class ProgressBar {
  private startedMs: number | null = null;
  private lastDecile = -1;
  private lastLabel = "";
  private drawn = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(label: string, done: number, total: number, note = ""): void {
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    // Rate from the first update on: setup (opening the bucket) is not progress.
    this.startedMs ??= performance.now();
    const seconds = (performance.now() - this.startedMs) / 1000;
    const rate = seconds > 0 ? `${Math.round(done / seconds / 1000).toLocaleString("en-US")}k rows/s` : "";
    if (this.out.isTTY) {
      const width = 20;
      const filled = Math.round(fraction * width);
      const line = `${label.slice(0, 22).padEnd(22)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${note} ${rate}`;
      this.out.write(`\r${line.slice(0, 79).padEnd(79)}`);
      this.drawn = true;
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile === this.lastDecile && label === this.lastLabel) return;
    this.lastDecile = decile;
    this.lastLabel = label;
    this.out.write(`${label}: ${Math.round(fraction * 100)}% ${note} ${rate}\n`);
  }

  /** End the bar's line (terminal only). */
  done(): void {
    if (this.drawn) this.out.write("\n");
    this.drawn = false;
  }
}
