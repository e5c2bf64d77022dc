import * as v from "valibot";
import { AdvisorResponse, type AdvisorRequest } from "../../schemas/advisor.ts";

export interface AdvisorConfig {
  url: string;
  timeoutMs: number;
}

/** The advisor's effect on one order, and how it was reached (kept with the order). */
export type Advice =
  | { source: "advisor"; action: "accept"; ms: number; reason?: string }
  | { source: "advisor"; action: "veto"; ms: number; reason?: string }
  | { source: "advisor"; action: "resize"; units: number; ms: number; reason?: string }
  /** Timeout, HTTP error, bad JSON or an answer outside the schema: the rule-based decision stands. */
  | { source: "fallback"; action: "accept"; ms: number; failure: "timeout" | "http_error" | "invalid_response" | "network_error"; detail: string };

/** Largest advisor answer read, in bytes. */
const RESPONSE_MAX_BYTES = 16 * 1024;

/**
 * Ask an HTTP JSON endpoint (an LLM service, a risk desk...) to veto or shrink
 * an order, within a strict time budget. Whatever goes wrong, the answer is
 * the rule-based decision: trading never waits on, or breaks because of, the
 * advisor. Resizes can only shrink an order.
 */
export async function askAdvisor(
  config: AdvisorConfig,
  request: AdvisorRequest,
  fetchImpl: typeof fetch = fetch,
  now: () => number = () => performance.now(),
): Promise<Advice> {
  const started = now();
  const ms = () => Math.round((now() - started) * 100) / 100;
  const fallback = (failure: Extract<Advice, { source: "fallback" }>["failure"], detail: string): Advice => ({
    source: "fallback", action: "accept", ms: ms(), failure, detail: detail.slice(0, 200),
  });
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve("timeout");
    }, config.timeoutMs);
  });
  try {
    const call = (async () => {
      const res = await fetchImpl(config.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(request),
        signal: controller.signal,
      });
      const text = await res.text();
      return { res, text };
    })();
    const outcome = await Promise.race([call, timeout]);
    if (outcome === "timeout") {
      call.catch(() => undefined);
      return fallback("timeout", `no answer within ${config.timeoutMs} ms`);
    }
    if (!outcome.res.ok) return fallback("http_error", `HTTP ${outcome.res.status}`);
    if (outcome.text.length > RESPONSE_MAX_BYTES) return fallback("invalid_response", "answer too large");
    let json: unknown;
    try {
      json = JSON.parse(outcome.text);
    } catch {
      return fallback("invalid_response", "answer is not JSON");
    }
    const parsed = v.safeParse(AdvisorResponse, json);
    if (!parsed.success) return fallback("invalid_response", parsed.issues[0]?.message ?? "answer outside the schema");
    const answer = parsed.output;
    const reason = answer.reason !== undefined ? { reason: answer.reason } : {};
    if (answer.action === "resize") {
      if (answer.units >= request.order.units) return { source: "advisor", action: "accept", ms: ms(), ...reason };
      return { source: "advisor", action: "resize", units: answer.units, ms: ms(), ...reason };
    }
    return { source: "advisor", action: answer.action, ms: ms(), ...reason };
  } catch (err) {
    return fallback(controller.signal.aborted ? "timeout" : "network_error", String(err));
  } finally {
    clearTimeout(timer);
  }
}
