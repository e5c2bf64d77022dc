/** JSON calls to a started runtime with an API key, for the Node tests that drive one over HTTP. */
export type Json = Record<string, any>;

export type AdminApi = (method: string, route: string, body?: unknown) => Promise<{ status: number; json: Json }>;

/** `baseUrl` is read on every call: a test may restart its runtime on another port. */
export function adminApi(baseUrl: () => string, key: string): AdminApi {
  return async (method, route, body) => {
    const res = await fetch(`${baseUrl()}${route}`, {
      method,
      headers: { "x-api-key": key, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as Json };
  };
}

/** The same, answering the parsed JSON and throwing with the status and body on anything but a 2xx: for tests where every call must succeed. */
export function okApi(baseUrl: () => string, key: string): (method: string, route: string, body?: unknown) => Promise<unknown> {
  return async (method, route, body) => {
    const res = await fetch(`${baseUrl()}${route}`, {
      method,
      headers: { "x-api-key": key, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
}
