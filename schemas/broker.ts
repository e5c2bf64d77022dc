import * as v from "valibot";

/** PUT /api/admin/broker/credentials: OANDA account and token, stored sealed (AES-GCM) in the coordinator. */
export const BrokerCredentialsBody = v.strictObject({
  accountId: v.pipe(v.string(), v.regex(/^\d{3}-\d{3}-\d+-\d{3}$/, "accountId must look like 101-004-1234567-001")),
  token: v.pipe(v.string(), v.minLength(16), v.maxLength(512), v.regex(/^[A-Za-z0-9._-]+$/, "token must be the v20 token as issued (letters, digits, - _ .)")),
});
