/**
 * Messages a room connection may send per second (a fixed one-second window,
 * per connection). The Worker's rate limits count HTTP requests; once a
 * socket is open its messages reach the actor directly, so the actor keeps
 * its own count and refuses what is over it.
 */
export class MessageBudget<K extends object> {
  private readonly windows = new WeakMap<K, { second: number; count: number }>();

  constructor(readonly perSecond: number) {}

  /** True when `key` may send one more message at `nowMs`. */
  take(key: K, nowMs: number): boolean {
    const second = Math.floor(nowMs / 1000);
    const w = this.windows.get(key);
    if (!w || w.second !== second) {
      this.windows.set(key, { second, count: 1 });
      return this.perSecond >= 1;
    }
    w.count++;
    return w.count <= this.perSecond;
  }
}
