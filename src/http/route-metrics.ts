import { LatencyWindow } from "../metrics/latency-window.ts";

interface RouteCounters {
  count: number;
  clientErrors: number;
  serverErrors: number;
  latency: LatencyWindow;
}

/**
 * Request counts, errors and latency per route, kept by each Worker isolate.
 * One isolate serves everything under `npm start`; on Cloudflare each isolate
 * reports its own share (the platform's analytics aggregate across them).
 */
const routes = new Map<string, RouteCounters>();
const MAX_ROUTES = 200;

export function recordRequest(route: string, status: number, ms: number): void {
  let c = routes.get(route);
  if (!c) {
    if (routes.size >= MAX_ROUTES) return;
    routes.set(route, (c = { count: 0, clientErrors: 0, serverErrors: 0, latency: new LatencyWindow(256) }));
  }
  c.count++;
  if (status >= 500) c.serverErrors++;
  else if (status >= 400) c.clientErrors++;
  c.latency.record(ms);
}

export function routeMetrics() {
  return [...routes.entries()].map(([route, c]) => ({
    route,
    requests: c.count,
    clientErrors: c.clientErrors,
    serverErrors: c.serverErrors,
    errorRate: c.count ? Math.round(((c.clientErrors + c.serverErrors) / c.count) * 10_000) / 10_000 : 0,
    latencyMs: c.latency.summary(),
  }));
}
