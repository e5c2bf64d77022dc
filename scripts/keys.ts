/**
 * Manage API keys of a running runtime:
 *
 *   npm run keys -- list
 *   npm run keys -- create --role viewer|trader|admin [--label "..."]
 *   npm run keys -- revoke <id>
 *
 * Options: --url (default FXRT_URL or http://127.0.0.1:8787), --api-key (default
 * FXRT_API_KEY; an admin key), --json. A created key is printed once: only its
 * hash is stored. Exit codes: 0 ok, 1 refused by the runtime, 2 bad arguments.
 */
import { pathToFileURL } from "node:url";
import { ROLES } from "../schemas/auth.ts";

const USAGE = "usage: keys list | create --role viewer|trader|admin [--label L] | revoke <id>  [--url U] [--api-key K] [--json]";

export async function keysCli(argv: readonly string[], env: Record<string, string | undefined>, out: (line: string) => void): Promise<number> {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--json") flags.set(arg, "true");
    else if (arg.startsWith("--")) flags.set(arg, argv[++i] ?? "");
    else positional.push(arg);
  }
  const [command, id] = positional;
  const url = (flags.get("--url") ?? env.FXRT_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
  const apiKey = flags.get("--api-key") ?? env.FXRT_API_KEY;
  const json = flags.get("--json") === "true";
  if (!apiKey) return usage(out, "an admin key is needed: --api-key or FXRT_API_KEY");
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { "x-api-key": apiKey, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { ok: res.ok, status: res.status, body: (await res.json()) as Record<string, any> };
  };
  let res;
  if (command === "list") res = await call("GET", "/api/admin/keys");
  else if (command === "create") {
    const role = flags.get("--role");
    if (!role || !(ROLES as readonly string[]).includes(role)) return usage(out, "--role must be viewer, trader or admin");
    res = await call("POST", "/api/admin/keys", { role, label: flags.get("--label") ?? "" });
  } else if (command === "revoke" && id) res = await call("DELETE", `/api/admin/keys/${encodeURIComponent(id)}`);
  else return usage(out, "unknown command");

  if (!res.ok) {
    out(json ? JSON.stringify(res.body) : `error ${res.status}: ${res.body.error?.code ?? ""} ${res.body.error?.message ?? ""}`);
    return 1;
  }
  if (json) out(JSON.stringify(res.body));
  else if (command === "list") {
    for (const k of res.body.keys as { id: string; role: string; label: string; createdAt: number; revokedAt: number | null }[]) {
      out(`${k.id}  ${k.role.padEnd(6)}  ${k.revokedAt ? "revoked" : "active "}  ${new Date(k.createdAt).toISOString().slice(0, 16)}  ${k.label}`);
    }
  } else if (command === "create") {
    out(`created ${res.body.id} (${res.body.role}). The key, shown once:`);
    out(String(res.body.key));
  } else out(`revoked ${res.body.id}`);
  return 0;
}

function usage(out: (line: string) => void, why: string): number {
  out(`keys: ${why}\n${USAGE}`);
  return 2;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await keysCli(process.argv.slice(2), process.env, (line) => console.log(line));
}
