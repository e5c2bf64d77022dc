import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { open, seal } from "../../src/security/credential-box.ts";

const KEY = Buffer.alloc(32, 3).toString("base64");
const OTHER = Buffer.alloc(32, 4).toString("base64");

describe("credential box (AES-GCM)", () => {
  it("opens what it sealed, with the same key and purpose only; every seal differs", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), fc.string({ minLength: 1, maxLength: 40 }), async (text, purpose) => {
        const a = await seal(text, KEY, purpose);
        const b = await seal(text, KEY, purpose);
        expect(a).not.toBe(b); // a fresh IV each time
        expect(await open(a, KEY, purpose)).toBe(text);
        await expect(open(a, OTHER, purpose)).rejects.toThrow(/does not open/);
        await expect(open(a, KEY, `${purpose}!`)).rejects.toThrow(/does not open/);
      }),
      { numRuns: 100 },
    );
  });

  it("any change to the sealed text fails to open", async () => {
    const sealed = await seal("token-123", KEY, "p");
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 3, max: sealed.length - 1 }), async (i) => {
        const c = sealed[i]!;
        const flipped = sealed.slice(0, i) + (c === "A" ? "B" : "A") + sealed.slice(i + 1);
        fc.pre(flipped !== sealed && flipped[i] !== ".");
        await expect(open(flipped, KEY, "p")).rejects.toThrow();
      }),
      { numRuns: 200 },
    );
  });

  it("every one-character change, at every position (the last one included), fails to open", async () => {
    // A CI run found the last character: base64 spends spare bits there, so 'A'/'B' could decode alike.
    const sealed = await seal("token-123", KEY, "p");
    for (let i = 0; i < sealed.length; i++) {
      for (const c of ["A", "B", "0", "_"]) {
        const changed = sealed.slice(0, i) + c + sealed.slice(i + 1);
        if (changed === sealed) continue;
        await expect(open(changed, KEY, "p")).rejects.toThrow();
      }
    }
  });

  it("refuses a key that is not 32 bytes of base64", async () => {
    await expect(seal("x", Buffer.alloc(16).toString("base64"), "p")).rejects.toThrow(/32 bytes/);
    await expect(seal("x", "%%%", "p")).rejects.toThrow(/base64/);
  });
});
