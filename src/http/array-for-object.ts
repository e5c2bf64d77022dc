/**
 * Where a body held an array in place of an object. valibot's object schemas
 * take any `typeof "object"` value, arrays included, and read an array's
 * missing keys as absent: `[]` passed as `{}` with every default, so
 * `PUT /api/admin/limits []` reset tightened limits. The parsed output shows
 * where an object was wanted; the input at the same place must be one too.
 *
 * Returns the path of the first such place ("" for the body itself), or null.
 */
export function arrayForObject(input: unknown, output: unknown, path = ""): string | null {
  if (Array.isArray(output)) {
    if (!Array.isArray(input)) return null;
    for (let i = 0; i < output.length; i++) {
      const found = arrayForObject(input[i], output[i], join(path, String(i)));
      if (found !== null) return found;
    }
    return null;
  }
  if (output === null || typeof output !== "object") return null;
  if (Array.isArray(input)) return path;
  if (input === null || typeof input !== "object") return null;
  for (const [key, value] of Object.entries(output)) {
    const found = arrayForObject((input as Record<string, unknown>)[key], value, join(path, key));
    if (found !== null) return found;
  }
  return null;
}

const join = (path: string, key: string) => (path === "" ? key : `${path}.${key}`);
