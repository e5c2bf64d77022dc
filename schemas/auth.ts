import * as v from "valibot";

/** Roles, each including the ones before it: viewer < trader < admin. */
export const ROLES = ["viewer", "trader", "admin"] as const;
export const RoleSchema = v.picklist(ROLES);
export type Role = (typeof ROLES)[number];

/** What a route or room message needs: "public" needs nothing; "market" is public unless MARKET_DATA_PUBLIC=false. */
export type Access = "public" | "market" | Role;

export const CreateKeyBody = v.object({
  role: RoleSchema,
  label: v.optional(v.pipe(v.string(), v.maxLength(100)), ""),
});

export const KeyInfo = v.object({
  id: v.string(),
  role: RoleSchema,
  label: v.string(),
  createdAt: v.number(),
  revokedAt: v.nullable(v.number()),
});
export type KeyInfo = v.InferOutput<typeof KeyInfo>;
