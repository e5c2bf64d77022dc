import { routePartykitRequest } from "partyserver";
import { configFor } from "./config.ts";
import { errorResponse, toErrorResponse } from "./http/errors.ts";
import { buildRouter } from "./http/routes.ts";

export { Pair } from "../actors/pair.ts";
export { SignalHub } from "../actors/signal-hub.ts";

const router = buildRouter();

export default {
  async fetch(request, env, ctx): Promise<Response> {
    try {
      const url = new URL(request.url);
      if (url.pathname === "/api/signals/realtime") {
        if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
          return errorResponse(426, "upgrade_required", "the signal stream speaks WebSocket only");
        }
        return env.SignalHub.getByName("all").fetch(request);
      }
      if (url.pathname.startsWith("/parties/")) {
        const config = configFor(env);
        const room = await routePartykitRequest(request, env, {
          onBeforeConnect: (_req, lobby) =>
            lobby.className === "Pair" && config.pairs.includes(lobby.name)
              ? undefined
              : errorResponse(404, "unknown_pair", `no room for ${lobby.name}`, { pairs: config.pairs }),
          onBeforeRequest: () => errorResponse(426, "upgrade_required", "rooms speak WebSocket only"),
        });
        return room ?? errorResponse(404, "not_found", "no such room");
      }
      const response: Response | undefined = await router.fetch(request, env, ctx);
      return response ?? errorResponse(404, "not_found", "no such route");
    } catch (err) {
      return toErrorResponse(err);
    }
  },

  /** Every minute (and once at local start): make sure each pair's alarm loop runs. */
  async scheduled(_controller, env, ctx): Promise<void> {
    const config = configFor(env);
    ctx.waitUntil(Promise.all(config.pairs.map((pair) => env.Pair.getByName(pair).wake())));
  },
} satisfies ExportedHandler<Env>;
